// run_process: both output streams, the exit status, a program killed by a signal, outputs larger
// than a pipe's buffer on both streams at once, and a program that does not exist.
#include "chronos/core/subprocess.h"

#include <gtest/gtest.h>

#include "chronos/core/error.h"

namespace chronos {
namespace {

TEST(Subprocess, CollectsBothStreamsAndTheExitStatus) {
  const ProcessResult r = run_process({"sh", "-c", "echo out; echo err >&2; exit 3"});
  EXPECT_EQ(r.out, "out\n");
  EXPECT_EQ(r.err, "err\n");
  EXPECT_EQ(r.exit_code, 3);
  // Arguments reach the program as they are: no shell splits or expands them.
  EXPECT_EQ(run_process({"printf", "%s|", "a b", "$HOME", "*"}).out, "a b|$HOME|*|");
}

TEST(Subprocess, DrainsLargeOutputOnBothStreams) {
  const ProcessResult r = run_process({"sh", "-c", "head -c 300000 /dev/zero; head -c 200000 /dev/zero >&2; head -c 300000 /dev/zero"});
  EXPECT_EQ(r.out.size(), 600000u);
  EXPECT_EQ(r.err.size(), 200000u);
  EXPECT_EQ(r.exit_code, 0);
}

TEST(Subprocess, ReportsSignalsAndMissingPrograms) {
  EXPECT_EQ(run_process({"sh", "-c", "kill -9 $$"}).exit_code, 128 + 9);
  EXPECT_THROW(run_process({"chronos-no-such-program-here"}), IoError);
  EXPECT_THROW(run_process({}), InvalidArgument);
  // Standard input is closed: a program reading it sees end of file at once.
  EXPECT_EQ(run_process({"cat"}).out, "");
}

}  // namespace
}  // namespace chronos
