# chronos_apply_sanitizer(target): adds -fsanitize=<CHRONOS_SANITIZE> to a target when set.
function(chronos_apply_sanitizer target)
  if(CHRONOS_SANITIZE)
    target_compile_options(${target} PUBLIC -fsanitize=${CHRONOS_SANITIZE} -fno-omit-frame-pointer -g)
    target_link_options(${target} PUBLIC -fsanitize=${CHRONOS_SANITIZE})
  endif()
endfunction()
