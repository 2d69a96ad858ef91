#include "chronos/train/data.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <optional>

#include "chronos/core/error.h"
#include "chronos/io/json_text.h"
#include "chronos/tokenizer/chat_formatter.h"
#include "chronos/tokenizer/chat_template.h"
#include "chronos/tokenizer/training_corpus.h"
#include "chronos/train/global_batch.h"

namespace chronos {
namespace {

constexpr int64_t kIgnore = -100;

// Index of `needle` in `hay` at or after `from`, or npos.
size_t find_ids(const std::vector<int64_t>& hay, const std::vector<int64_t>& needle, size_t from) {
  if (needle.empty() || hay.size() < needle.size()) return std::string::npos;
  for (size_t i = from; i + needle.size() <= hay.size(); ++i)
    if (std::equal(needle.begin(), needle.end(), hay.begin() + static_cast<std::ptrdiff_t>(i))) return i;
  return std::string::npos;
}

}  // namespace

bool Example::has_targets() const {
  return std::any_of(labels.begin() + std::min<size_t>(1, labels.size()), labels.end(), [](int64_t l) { return l != kIgnore; });
}

int64_t Batch::tokens() const { return attention_mask.sum().item<int64_t>(); }

Batch make_batch(const std::vector<Example>& examples, int64_t pad_id) {
  if (examples.empty()) throw InvalidArgument("make_batch: no examples");
  size_t longest = 0;
  for (const auto& e : examples) longest = std::max(longest, e.ids.size());
  // In a data-parallel step every rank pads to the longest sequence of any rank (train/global_batch.h).
  const int64_t B = static_cast<int64_t>(examples.size()), S = max_over_ranks(static_cast<int64_t>(longest));
  Batch batch;
  batch.input_ids = at::full({B, S}, pad_id, at::kLong);
  batch.labels = at::full({B, S}, kIgnore, at::kLong);
  batch.attention_mask = at::zeros({B, S}, at::kLong);
  auto ids = batch.input_ids.accessor<int64_t, 2>();
  auto labels = batch.labels.accessor<int64_t, 2>();
  auto mask = batch.attention_mask.accessor<int64_t, 2>();
  for (int64_t b = 0; b < B; ++b) {
    const Example& e = examples[static_cast<size_t>(b)];
    for (size_t t = 0; t < e.ids.size(); ++t) {
      ids[b][static_cast<int64_t>(t)] = e.ids[t];
      labels[b][static_cast<int64_t>(t)] = e.labels[t];
      mask[b][static_cast<int64_t>(t)] = 1;
    }
  }
  return batch;
}

ExampleEncoder::ExampleEncoder(const Tokenizer& tokenizer, EncoderOptions options) : tokenizer_(tokenizer), options_(options) {
  if (options_.max_seq_len < 2) throw InvalidArgument(cat("max_seq_len must be >= 2 (got ", options_.max_seq_len, ")"));
  assistant_marker_ = encode("<|im_start|>assistant\n");
  turn_end_ = encode("<|im_end|>\n");
}

std::vector<int64_t> ExampleEncoder::encode(const std::string& text) const {
  const std::vector<TokenId> ids = tokenizer_.encode(text);
  return std::vector<int64_t>(ids.begin(), ids.end());
}

std::vector<int64_t> ExampleEncoder::pretrain_tokens(const nlohmann::json& record, const std::string& where) const {
  if (!record.is_object()) throw FormatError(cat(where, ": expected a JSON object"));
  const std::optional<std::string> text = record_text(record);
  if (!text || text->empty()) throw FormatError(cat(where, ": no text field (text, content, story, ...)"));
  std::vector<int64_t> ids = {options_.bos_id};
  const std::vector<int64_t> body = encode(*text);
  ids.insert(ids.end(), body.begin(), body.end());
  ids.push_back(options_.eos_id);
  return ids;
}

Example ExampleEncoder::templated_conversation(const nlohmann::json& messages, const std::string& where) const {
  const ChatFormatter& chat = *options_.chat_template;
  if (!messages.is_array() || messages.empty()) throw FormatError(cat(where, ": empty conversation"));
  const nlohmann::ordered_json all(messages);
  std::string text;
  std::vector<std::pair<size_t, size_t>> spans;  // bytes of `text` the assistant answers occupy
  try {
    text = chat.render(all, /*add_generation_prompt=*/false);
    for (size_t i = 0; i < all.size(); ++i) {
      if (!all[i].is_object() || all[i].value("role", "") != "assistant") continue;
      const nlohmann::ordered_json before(std::vector<nlohmann::ordered_json>(all.begin(), all.begin() + static_cast<std::ptrdiff_t>(i)));
      const nlohmann::ordered_json upto(std::vector<nlohmann::ordered_json>(all.begin(), all.begin() + static_cast<std::ptrdiff_t>(i + 1)));
      const std::string prompt = chat.render(before, /*add_generation_prompt=*/true);
      const std::string answered = chat.render(upto, /*add_generation_prompt=*/false);
      if (answered.size() > prompt.size() && answered.compare(0, prompt.size(), prompt) == 0 &&
          text.compare(0, answered.size(), answered) == 0)
        spans.emplace_back(prompt.size(), answered.size());
    }
  } catch (const Error& e) {
    throw FormatError(cat(where, ": ", e.what()));
  }
  // The template writes the special tokens (BOS) itself.
  const Encoding encoding = tokenizer_.encode_with_offsets(text, EncodeOptions{/*add_special_tokens=*/false});
  Example example;
  example.ids.assign(encoding.ids.begin(), encoding.ids.end());
  example.labels.assign(example.ids.size(), kIgnore);
  for (size_t t = 0; t < example.ids.size(); ++t)
    for (const auto& [start, end] : spans)
      if (encoding.offsets[t].first >= start && encoding.offsets[t].first < end) example.labels[t] = example.ids[t];
  if (static_cast<int64_t>(example.ids.size()) > options_.max_seq_len) {
    example.ids.resize(static_cast<size_t>(options_.max_seq_len));
    example.labels.resize(static_cast<size_t>(options_.max_seq_len));
  }
  return example;
}

Example ExampleEncoder::conversation(const nlohmann::json& messages, const std::string& where) const {
  if (options_.chat_template) return templated_conversation(messages, where);
  ChatConversation chat;
  try {
    chat = parse_conversation(nlohmann::ordered_json(messages));
  } catch (const Error& e) {
    throw FormatError(cat(where, ": ", e.what()));
  }
  if (chat.messages.empty()) throw FormatError(cat(where, ": empty conversation"));
  Example example;
  example.ids = encode(render_chat(chat.messages, chat.tools));
  if (static_cast<int64_t>(example.ids.size()) > options_.max_seq_len) example.ids.resize(static_cast<size_t>(options_.max_seq_len));
  example.labels.assign(example.ids.size(), kIgnore);
  // Supervise each assistant answer: from after the marker through the closing "<|im_end|>\n".
  size_t at = find_ids(example.ids, assistant_marker_, 0);
  while (at != std::string::npos) {
    const size_t start = at + assistant_marker_.size();
    const size_t close = find_ids(example.ids, turn_end_, start);
    const size_t end = close == std::string::npos ? example.ids.size() : close + turn_end_.size();
    for (size_t t = start; t < end; ++t) example.labels[t] = example.ids[t];
    at = find_ids(example.ids, assistant_marker_, end);
  }
  return example;
}

Example ExampleEncoder::sft(const nlohmann::json& record, const std::string& where) const {
  if (!record.is_object()) throw FormatError(cat(where, ": expected a JSON object"));
  for (const char* key : {"conversations", "messages"}) {
    auto it = record.find(key);
    if (it != record.end()) {
      if (!it->is_array()) throw FormatError(cat(where, ": '", key, "' must be a list of messages"));
      return conversation(*it, where);
    }
  }
  throw FormatError(cat(where, ": no 'conversations' list"));
}

PreferenceExample ExampleEncoder::preference(const nlohmann::json& record, const std::string& where) const {
  if (!record.is_object()) throw FormatError(cat(where, ": expected a JSON object"));
  for (const char* key : {"chosen", "rejected"})
    if (!record.contains(key) || !record[key].is_array()) throw FormatError(cat(where, ": '", key, "' must be a list of messages"));
  return {conversation(record["chosen"], where + " (chosen)"), conversation(record["rejected"], where + " (rejected)")};
}

std::pair<std::vector<int64_t>, std::string> ExampleEncoder::prompt(const nlohmann::json& record, const std::string& where) const {
  if (!record.is_object()) throw FormatError(cat(where, ": expected a JSON object"));
  const nlohmann::json* messages = nullptr;
  for (const char* key : {"conversations", "messages"})
    if (record.contains(key) && record[key].is_array()) messages = &record[key];
  std::string user;
  if (messages) {
    for (const auto& m : *messages)
      if (m.is_object() && m.contains("role") && m["role"] == "user" && m.contains("content") && m["content"].is_string()) {
        user = m["content"].get<std::string>();
        break;
      }
  } else if (record.contains("prompt") && record["prompt"].is_string()) {
    user = record["prompt"].get<std::string>();
  }
  if (user.empty()) throw FormatError(cat(where, ": no user message to use as a prompt"));
  ChatTemplateOptions options;
  options.add_generation_prompt = true;
  const auto render = [&](const std::string& content) {
    if (!options_.chat_template) return render_chat({{"user", content, std::nullopt, {}}}, {}, options);
    return options_.chat_template->render(nlohmann::ordered_json::array({{{"role", "user"}, {"content", content}}}), true);
  };
  std::vector<int64_t> ids = encode(render(user));
  if (static_cast<int64_t>(ids.size()) > options_.max_seq_len) {
    // Shorten the user text, never the generation prompt (B4): cut its tokens by the excess.
    std::vector<int64_t> content = encode(user);
    const int64_t excess = static_cast<int64_t>(ids.size()) - options_.max_seq_len;
    if (excess >= static_cast<int64_t>(content.size())) throw FormatError(cat(where, ": max_seq_len too small for the chat template"));
    content.resize(content.size() - static_cast<size_t>(excess));
    user = tokenizer_.decode(std::vector<TokenId>(content.begin(), content.end()));
    ids = encode(render(user));
  }
  return {ids, user};
}

nlohmann::json cursor_to_json(const DataCursor& c) {
  return {{"epoch", c.epoch}, {"position", c.position}, {"bad_records", c.bad_records}};
}

namespace {
// data.<key> of trainer_state.json as a count; nullopt when absent.
std::optional<int64_t> state_count(const nlohmann::json& state, const char* key) {
  if (!state.is_object()) throw FormatError("trainer_state.json: data must be an object");
  const auto it = state.find(key);
  if (it == state.end()) return std::nullopt;
  if (!it->is_number_integer() || (it->is_number_unsigned() && it->get<uint64_t>() > (uint64_t{1} << 62)) || it->get<int64_t>() < 0)
    throw FormatError(cat("trainer_state.json: data.", key, " must be a non-negative integer (got ", describe_json(*it), ")"));
  return it->get<int64_t>();
}
}  // namespace

int64_t optional_state_count(const nlohmann::json& state, const char* key) { return state_count(state, key).value_or(0); }

DataCursor cursor_from_json(const nlohmann::json& json) {
  const auto count = [&](const char* key) {
    const std::optional<int64_t> value = state_count(json, key);
    if (!value) throw FormatError(cat("trainer_state.json: data.", key, " is missing"));
    return *value;
  };
  return {count("epoch"), count("position"), count("bad_records")};
}

nlohmann::json reshard_data_state(const nlohmann::json& state, int64_t from_ranks, int64_t to_ranks) {
  if (from_ranks < 1 || to_ranks < 1) throw InvalidArgument(cat("cannot reshard data from ", from_ranks, " to ", to_ranks, " ranks"));
  const DataCursor cursor = cursor_from_json(state);
  nlohmann::json out = state;
  const nlohmann::json moved = cursor_to_json({cursor.epoch, cursor.position * from_ranks / to_ranks, cursor.bad_records});
  for (const auto& [key, value] : moved.items()) out[key] = value;
  out.erase("carry");
  return out;
}

RecordStream::RecordStream(const std::string& path, uint64_t seed, bool shuffle, bool skip_bad_lines)
    : file_(path), seed_(seed), shuffle_(shuffle), skip_bad_(skip_bad_lines) {
  if (file_.size() == 0) throw FormatError(cat(path, ": the dataset is empty"));
  start_epoch();
}

void RecordStream::start_epoch() {
  std::vector<size_t> order;
  if (shuffle_) {
    order = shuffled_order(file_.size(), seed_ + static_cast<uint64_t>(cursor_.epoch));
  } else {
    order.resize(file_.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  }
  if (shard_.count == 1) {
    order_ = std::move(order);
    return;
  }
  order_.clear();
  const auto stride = static_cast<size_t>(shard_.count);
  const size_t usable = order.size() - order.size() % stride;  // equal shares: the ranks stay in step
  for (size_t i = static_cast<size_t>(shard_.rank); i < usable; i += stride) order_.push_back(order[i]);
}

void RecordStream::set_shard(const DataShard& shard) {
  if (shard.count < 1 || shard.rank < 0 || shard.rank >= shard.count)
    throw InvalidArgument(cat("data shard ", shard.rank, " of ", shard.count, " does not exist"));
  if (static_cast<int64_t>(file_.size()) < shard.count)
    throw InvalidArgument(cat(path(), ": ", file_.size(), " records cannot be shared by ", shard.count, " ranks"));
  shard_ = shard;
  start_epoch();
}

void RecordStream::seek(const DataCursor& cursor) {
  if (cursor.epoch < 0 || cursor.position < 0 || cursor.bad_records < 0 || cursor.position > static_cast<int64_t>(records_per_epoch()))
    throw FormatError(cat("trainer_state.json: the data cursor (epoch ", cursor.epoch, ", position ", cursor.position, ") does not fit the ",
                          records_per_epoch(), " records per epoch of ", path(), shard_.count > 1 ? cat(" on ", shard_.count, " ranks") : std::string(),
                          " (a checkpoint for other data?)"));
  cursor_ = cursor;
  start_epoch();
}

std::vector<Example> next_supervised_batch(RecordStream& records, const ExampleEncoder& encoder, int64_t batch_size,
                                           int64_t& dropped) {
  std::vector<Example> examples;
  int64_t misses_in_a_row = 0;
  while (static_cast<int64_t>(examples.size()) < batch_size) {
    Example e = records.next([&](const nlohmann::json& r, const std::string& w) { return encoder.sft(r, w); });
    if (e.has_targets()) {
      examples.push_back(std::move(e));
      misses_in_a_row = 0;
    } else if (++dropped, ++misses_in_a_row >= static_cast<int64_t>(records.records_per_epoch())) {
      throw FormatError(cat(records.path(), ": no record has a supervised assistant token within max_seq_len ",
                            encoder.options().max_seq_len));
    }
  }
  return examples;
}

PackedTextStream::PackedTextStream(RecordStream& records, const ExampleEncoder& encoder) : records_(records), encoder_(encoder) {}

Example PackedTextStream::next() {
  const auto length = static_cast<size_t>(encoder_.options().max_seq_len);
  while (carry_.size() < length) {
    const std::vector<int64_t> doc =
        records_.next([&](const nlohmann::json& record, const std::string& where) { return encoder_.pretrain_tokens(record, where); });
    carry_.insert(carry_.end(), doc.begin(), doc.end());
  }
  Example e;
  e.ids.assign(carry_.begin(), carry_.begin() + static_cast<std::ptrdiff_t>(length));
  e.labels = e.ids;
  carry_.erase(carry_.begin(), carry_.begin() + static_cast<std::ptrdiff_t>(length));
  return e;
}

}  // namespace chronos
