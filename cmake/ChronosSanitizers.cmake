# chronos_apply_sanitizer(target): adds -fsanitize=<CHRONOS_SANITIZE> to a target when set (PUBLIC:
# everything that links the library, tests and tools included, is instrumented the same way).
# Undefined behaviour stops the program instead of printing and carrying on, so a test fails on it.
function(chronos_apply_sanitizer target)
  if(CHRONOS_SANITIZE)
    set(flags -fsanitize=${CHRONOS_SANITIZE} -fno-omit-frame-pointer -g)
    if(CHRONOS_SANITIZE MATCHES "undefined")
      list(APPEND flags -fno-sanitize-recover=undefined)
    endif()
    target_compile_options(${target} PUBLIC ${flags})
    target_link_options(${target} PUBLIC -fsanitize=${CHRONOS_SANITIZE})
  endif()
endfunction()

# The environment the tests run in under a sanitizer. LibTorch and OpenBLAS are not instrumented:
# LeakSanitizer would report their process-lifetime allocations, so leak checking is off.
set(CHRONOS_SANITIZER_TEST_ENV "")
if(CHRONOS_SANITIZE)
  set(CHRONOS_SANITIZER_TEST_ENV
      "ASAN_OPTIONS=detect_leaks=0:detect_odr_violation=0:abort_on_error=1;UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1")
endif()
