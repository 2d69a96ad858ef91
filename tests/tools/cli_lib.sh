# Shared helpers of the command-line test scripts (sourced). Needs $work (a scratch folder); keeps
# the counts in $passed and $failures.
passed=0 failures=0

fail() { echo "FAIL $*"; failures=$((failures + 1)); }

# expect_error NAME FRAGMENT CMD...: CMD must fail with one stderr line containing FRAGMENT.
expect_error() {
  local name=$1 fragment=$2
  shift 2
  "$@" >"$work/out" 2>"$work/err" </dev/null
  local rc=$? lines
  lines=$(grep -c . "$work/err")
  if [ $rc -eq 0 ] || [ "$lines" -ne 1 ] || ! grep -qF -- "$fragment" "$work/err"; then
    fail "$name: rc=$rc, stderr lines=$lines, wanted '$fragment':"; sed 's/^/  | /' "$work/err"
  else
    passed=$((passed + 1))
  fi
}

# expect_ok NAME CMD...: CMD must succeed.
expect_ok() {
  local name=$1
  shift
  if ! "$@" >"$work/out" 2>"$work/err"; then
    fail "$name:"; sed 's/^/  | /' "$work/err"
  else
    passed=$((passed + 1))
  fi
}
