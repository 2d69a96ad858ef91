// The official `openai` npm client (6.x) against chronos-serve: models, chat and text completions,
// streamed and whole, stop strings, aborts and the error classes. Usage: node openai_client.cjs URL API_KEY
"use strict";
const OpenAI = require("openai");
const [url, key] = process.argv.slice(2);

let failures = 0, passed = 0;
function check(ok, what, detail) {
  if (ok) passed++;
  else { failures++; console.log("FAIL " + what + (detail === undefined ? "" : ": " + JSON.stringify(detail))); }
}
async function expectError(what, promise, cls, status) {
  try {
    await promise;
    check(false, what + " was accepted");
  } catch (e) {
    check(e instanceof cls && e.status === status, what + ` -> ${cls.name} ${status}`, { name: e.constructor.name, status: e.status, message: e.message });
    return e;
  }
}

(async () => {
  const client = new OpenAI({ baseURL: url + "/v1", apiKey: key, maxRetries: 0, timeout: 60000 });
  const models = await client.models.list();
  const id = models.data[0].id;
  check(models.data.length === 1 && typeof id === "string" && models.data[0].object === "model", "models.list", models.data);

  const messages = [{ role: "system", content: "You are terse." }, { role: "user", content: "Say something about rivers." }];
  const whole = await client.chat.completions.create({ model: id, messages, temperature: 0, max_tokens: 12 });
  const reply = whole.choices[0].message.content;
  check(whole.object === "chat.completion" && whole.choices[0].message.role === "assistant", "chat object", whole);
  check(typeof reply === "string" && reply.length > 0, "chat reply text", reply);
  check(whole.usage.completion_tokens === 12 && whole.choices[0].finish_reason === "length", "chat usage and finish", whole.usage);
  check(whole.usage.total_tokens === whole.usage.prompt_tokens + 12, "total tokens", whole.usage);

  // The same request streamed: the deltas make the same text; role first, finish, usage, then the end.
  const stream = await client.chat.completions.create({ model: id, messages, temperature: 0, max_tokens: 12, stream: true,
                                                         stream_options: { include_usage: true } });
  let text = "", role = null, finish = null, usage = null, chunks = 0;
  for await (const chunk of stream) {
    chunks++;
    check(chunk.object === "chat.completion.chunk" && chunk.id.startsWith("chatcmpl-"), "chunk object", chunk);
    if (chunk.usage) usage = chunk.usage;
    const choice = chunk.choices[0];
    if (!choice) continue;
    if (choice.delta.role) role = choice.delta.role;
    if (choice.delta.content) text += choice.delta.content;
    if (choice.finish_reason) finish = choice.finish_reason;
  }
  check(role === "assistant", "stream role", role);
  check(text === reply, "streamed text equals the whole reply", { text, reply });
  check(finish === "length", "stream finish_reason", finish);
  check(usage && usage.completion_tokens === 12, "stream usage chunk", usage);
  check(chunks >= 4, "stream chunks", chunks);

  // The stream helper of the SDK.
  const runner = client.chat.completions.stream({ model: id, messages, temperature: 0, max_tokens: 12 });
  const final = await runner.finalChatCompletion();
  check(final.choices[0].message.content === reply, "chat.completions.stream helper", final.choices[0].message.content);

  // A stop string from the reply cuts it there.
  const chars = Array.from(reply);
  if (chars.length >= 4) {
    const stop = chars[Math.floor(chars.length / 2)];
    const stopped = await client.chat.completions.create({ model: id, messages, temperature: 0, max_tokens: 12, stop: [stop] });
    check(stopped.choices[0].message.content === reply.slice(0, reply.indexOf(stop)) && stopped.choices[0].finish_reason === "stop",
          "stop string", { stop, got: stopped.choices[0].message.content, reply });
  }

  // Text completions, whole and streamed, seeded sampling repeats.
  const c1 = await client.completions.create({ model: id, prompt: "The river", max_tokens: 8, temperature: 0.9, seed: 3 });
  const c2 = await client.completions.create({ model: id, prompt: "The river", max_tokens: 8, temperature: 0.9, seed: 3 });
  check(c1.object === "text_completion" && c1.choices[0].text === c2.choices[0].text, "seeded completions repeat", [c1.choices[0].text, c2.choices[0].text]);
  let streamed = "";
  for await (const chunk of await client.completions.create({ model: id, prompt: "The river", max_tokens: 8, temperature: 0.9, seed: 3, stream: true }))
    streamed += chunk.choices[0] ? chunk.choices[0].text : "";
  check(streamed === c1.choices[0].text, "streamed completion", { streamed, whole: c1.choices[0].text });

  // An aborted stream ends on the client; the server goes on.
  const controller = new AbortController();
  const long = await client.chat.completions.create({ model: id, messages, max_tokens: 400, stream: true }, { signal: controller.signal });
  let got = 0, abortedFinish = null;
  try {
    // The SDK ends the iteration quietly on an abort (or throws its abort error).
    for await (const chunk of long) {
      if (++got === 3) controller.abort();
      if (chunk.choices[0] && chunk.choices[0].finish_reason) abortedFinish = chunk.choices[0].finish_reason;
    }
  } catch (e) {
    check(e.name === "APIUserAbortError" || e.name === "AbortError", "abort error class", e.name);
  }
  check(abortedFinish === null && got < 50, "the aborted stream stopped", { got, abortedFinish });
  const after = await client.chat.completions.create({ model: id, messages, temperature: 0, max_tokens: 12 });
  check(after.choices[0].message.content === reply, "served after an abort", after.choices[0].message.content);

  // Errors, as the SDK's classes.
  await expectError("temperature 5", client.chat.completions.create({ model: id, messages, temperature: 5 }), OpenAI.BadRequestError, 400);
  await expectError("no messages", client.chat.completions.create({ model: id, messages: [] }), OpenAI.BadRequestError, 400);
  const e = await expectError("n = 2", client.chat.completions.create({ model: id, messages, n: 2 }), OpenAI.BadRequestError, 400);
  check(e && e.error && e.error.type === "invalid_request_error" && typeof e.error.message === "string", "error body", e && e.error);
  const wrong = new OpenAI({ baseURL: url + "/v1", apiKey: "wrong", maxRetries: 0 });
  await expectError("wrong key", wrong.models.list(), OpenAI.AuthenticationError, 401);
  await expectError("unknown route", client.get("/nothing"), OpenAI.NotFoundError, 404);

  const metrics = await fetch(url + "/metrics", { headers: { Authorization: "Bearer " + key } }).then((r) => r.text());
  check(/chronos_generated_tokens_total \d+/.test(metrics) && /chronos_requests_cancelled_total [1-9]/.test(metrics), "metrics", metrics.slice(0, 400));

  let version = "6.x";
  try { version = require("openai/package.json").version; } catch (_) { /* not exported */ }
  console.log(`openai ${version}: ${passed} checks passed, ${failures} failed`);
  process.exit(failures ? 1 : 0);
})().catch((e) => { console.log("FAIL " + (e.stack || e)); process.exit(1); });
