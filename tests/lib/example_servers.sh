# Sourced by the harnesses that run every example server as a process (tests/storm,
# tests/containers): builds those named in $servers (",smol-server,threads-server,
# c-server,node-server,", commas around each name) when missing or stale (cargo, make
# and the addon's build script decide), and appends one `--server NAME=LANG:PATH` pair
# per server built to the array `specs`. A server that could not be built is counted in
# `broken` and printed as a FAIL line: the caller reports it as a failure, never as a
# pass. Needs: root, target, prefix (the C library's install prefix), cargo, servers,
# specs=(), broken=0, and a say() function.

example_servers_fail() {
  broken=$((broken + 1))
  printf 'FAIL %s\n' "$1"
}

build_example_servers() {
  local rust_bins=() bin_args=() s ok
  for s in smol-server threads-server; do
    case "$servers" in *,"$s",*) rust_bins+=("$s") ;; esac
  done
  if [ "${#rust_bins[@]}" -gt 0 ]; then
    say "building ${rust_bins[*]} (cargo build --release)"
    for s in "${rust_bins[@]}"; do bin_args+=(--bin "$s"); done
    if (cd "$root" && "$cargo" build --release -q -p libshutdown-examples "${bin_args[@]}"); then
      for s in "${rust_bins[@]}"; do specs+=(--server "$s=rust:$target/release/$s"); done
    else
      example_servers_fail "building ${rust_bins[*]}"
    fi
  fi

  case "$servers" in
    *,c-server,*)
      say "building the C example server (examples/c against $prefix)"
      ok=1
      if [ ! -f "$prefix/lib/pkgconfig/shutdown.pc" ]; then
        bash "$root/ffi/tests/run.sh" --build-only >/dev/null || ok=0
      fi
      if [ "$ok" -eq 1 ] && make -s -C "$root/examples/c" PREFIX="$prefix" TARGET="$target" \
        "$target/examples-c/server"; then
        specs+=(--server "c-server=c:$target/examples-c/server")
        export LD_LIBRARY_PATH="$prefix/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
      else
        example_servers_fail "building the C example server"
      fi
      ;;
  esac

  case "$servers" in
    *,node-server,*)
      say "building the Node addon (bindings/node/scripts/build.js)"
      if ! command -v node >/dev/null; then
        example_servers_fail "node-server: node is needed"
      elif (cd "$root/bindings/node" && node scripts/build.js >/dev/null 2>&1); then
        specs+=(--server "node-server=node:$root/examples/node/server.js")
      else
        example_servers_fail "building the Node addon"
      fi
      ;;
  esac
}
