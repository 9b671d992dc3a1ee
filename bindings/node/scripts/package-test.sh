#!/usr/bin/env bash
# make package-test-node: the npm packages as a user gets them. Builds the addon
# (release), packs `libshutdown` and `@libshutdown/linux-x64-gnu` with `npm pack` into a
# temporary directory, and installs them into fresh temporary projects with cargo and
# rustc out of PATH: once with npm, once with pnpm 10 (which must install without
# running any build script). In each project a real server using attach() from the
# installed package gets a real SIGTERM while a request is in flight, serves it and
# exits 0 with its report, and a TypeScript file that imports the installed package's
# types compiles with `tsc --noEmit`. Then the way without a prebuilt addon: the main
# tarball alone (optional dependencies omitted) fails to load with the triple and the
# command to build, `npx libshutdown-build` builds it from the tarball's sources
# (outside the repository, with cargo), and the same server passes.
#
# Local tarballs only: nothing is published. Every step is bounded by `timeout`. The
# last line is `package-test-node: N passed, M failed`; the exit code is non-zero when
# anything failed. KEEP=1 keeps the temporary directory.
set -uo pipefail
cd "$(dirname "$0")/.."
here=$PWD

# ----- one step, re-entered: bash package-test.sh --step NAME --------------------------
if [ "${1:-}" = "--step" ]; then
  set -e
  step=$2
  : "${T:?}" "${NOCARGO_PATH:?}"
  pack=$T/pack
  main_tgz=$pack/libshutdown-0.1.0.tgz
  plat_tgz=$pack/libshutdown-linux-x64-gnu-0.1.0.tgz
  ts_deps='"typescript": "^5.4.0", "@types/node": "^20.11.0"'
  project() { # dir, extra package.json fields
    rm -rf "$1" && mkdir -p "$1"
    cp "$here"/test/package/{server.js,check.js,types.ts,tsconfig.json} "$1"/
    printf '{\n  "name": "libshutdown-package-test",\n  "private": true,\n  "version": "1.0.0",\n  "dependencies": { "libshutdown": "file:%s" },\n  "devDependencies": { %s }%s\n}\n' \
      "$main_tgz" "$ts_deps" "$2" > "$1/package.json"
  }
  no_build_done() { # the installed main package: no install script, nothing built in it
    local dir; dir=$(cd "$1/node_modules/libshutdown" && pwd -P)
    node -e '
      const s = require(process.argv[1] + "/package.json").scripts ?? {};
      for (const k of ["preinstall", "install", "postinstall"]) if (s[k]) { console.error("install script " + k); process.exit(1); }
    ' "$dir"
    if [ -e "$dir/libshutdown.node" ] || [ -e "$dir/target" ]; then echo "something was built in $dir" >&2; exit 1; fi
  }
  case $step in
    build)
      node scripts/build.js --platform
      ;;
    pack)
      rm -rf "$pack" && mkdir -p "$pack"
      npm pack --pack-destination "$pack" >/dev/null
      (cd npm/linux-x64-gnu && npm pack --pack-destination "$pack" >/dev/null)
      for f in "$main_tgz" "$plat_tgz"; do echo "== $(basename "$f")"; tar tzf "$f" | sort; done
      main=$(tar tzf "$main_tgz")
      for f in package/package.json package/index.js package/index.d.ts package/lib/native.js package/lib/attach.js \
        package/scripts/build.js package/vendor/Cargo.toml package/vendor/Cargo.lock package/vendor/src/lib.rs \
        package/vendor/build.rs package/vendor/core/Cargo.toml package/vendor/core/src/lib.rs; do
        grep -qx "$f" <<<"$main" || { echo "missing from the main tarball: $f" >&2; exit 1; }
      done
      if grep -E '\.node$|^package/Cargo.toml$|^package/test/|/target/' <<<"$main"; then echo "does not belong in the main tarball" >&2; exit 1; fi
      [ "$(tar tzf "$plat_tgz" | sort | tr '\n' ' ')" = "package/README.md package/libshutdown.linux-x64-gnu.node package/package.json " ] \
        || { echo "unexpected platform tarball contents" >&2; exit 1; }
      [ ! -e vendor ] || { echo "postpack left vendor/ behind" >&2; exit 1; }
      ;;
    no-cargo)
      export PATH=$NOCARGO_PATH
      if command -v cargo || command -v rustc; then echo "cargo or rustc still on PATH" >&2; exit 1; fi
      echo "PATH=$PATH: no cargo, no rustc; node $(node --version), npm $(npm --version)"
      ;;
    npm-install)
      export PATH=$NOCARGO_PATH
      # overrides: the platform package comes from its tarball, as from the registry.
      project "$T/npm-project" ",
  \"overrides\": { \"@libshutdown/linux-x64-gnu\": \"file:$plat_tgz\" }"
      cd "$T/npm-project"
      npm install --no-audit --no-fund --foreground-scripts 2>&1 | tee "$T/npm-install.out"
      test -f node_modules/@libshutdown/linux-x64-gnu/libshutdown.linux-x64-gnu.node
      no_build_done .
      npx --no-install libshutdown-build --help # the from-source command is there
      ;;
    npm-server)
      export PATH=$NOCARGO_PATH
      cd "$T/npm-project" && node check.js '/node_modules/@libshutdown/linux-x64-gnu/libshutdown\.linux-x64-gnu\.node$'
      ;;
    npm-tsc)
      export PATH=$NOCARGO_PATH
      cd "$T/npm-project" && ./node_modules/.bin/tsc --noEmit -p tsconfig.json && echo "tsc --noEmit: ok"
      ;;
    pnpm-get)
      export PATH=$NOCARGO_PATH
      npm install --global --prefix "$T/pnpm-cli" --no-audit --no-fund pnpm@10 >/dev/null
      "$T/pnpm-cli/bin/pnpm" --version
      ;;
    pnpm-install)
      export PATH=$T/pnpm-cli/bin:$NOCARGO_PATH
      project "$T/pnpm-project" ",
  \"pnpm\": { \"overrides\": { \"@libshutdown/linux-x64-gnu\": \"file:$plat_tgz\" } }"
      cd "$T/pnpm-project"
      CI=true pnpm install --store-dir "$T/pnpm-store" --reporter append-only 2>&1 | tee "$T/pnpm-install.out"
      # pnpm 10 lists the dependencies whose build scripts it did not run: none may be ours.
      if grep -i 'ignored build scripts' "$T/pnpm-install.out"; then echo "pnpm skipped a build script" >&2; exit 1; fi
      test -f "$(node -p 'require.resolve("@libshutdown/linux-x64-gnu", { paths: [require("path").dirname(require.resolve("libshutdown"))] })')"
      no_build_done .
      pnpm exec libshutdown-build --help # the from-source command is there
      ;;
    pnpm-server)
      export PATH=$T/pnpm-cli/bin:$NOCARGO_PATH
      cd "$T/pnpm-project" && node check.js '/node_modules/@libshutdown/linux-x64-gnu/libshutdown\.linux-x64-gnu\.node$'
      ;;
    pnpm-tsc)
      export PATH=$T/pnpm-cli/bin:$NOCARGO_PATH
      cd "$T/pnpm-project" && ./node_modules/.bin/tsc --noEmit -p tsconfig.json && echo "tsc --noEmit: ok"
      ;;
    source-install)
      export PATH=$NOCARGO_PATH
      project "$T/source-project" ""
      cd "$T/source-project"
      # As on a platform without a prebuilt addon: no platform package at all.
      npm install --omit=optional --no-audit --no-fund --foreground-scripts
      test ! -e node_modules/@libshutdown/linux-x64-gnu
      no_build_done .
      ;;
    source-missing)
      export PATH=$NOCARGO_PATH
      cd "$T/source-project"
      if node -e 'require("libshutdown")' 2>"$T/missing.err"; then echo "loaded without any addon?" >&2; exit 1; fi
      cat "$T/missing.err"
      grep -q 'ERR_SHUTDOWN_ADDON' "$T/missing.err"
      grep -q 'no native addon for this platform, linux-x64-gnu' "$T/missing.err"
      grep -q 'npx libshutdown-build' "$T/missing.err"
      ;;
    source-build)
      # With cargo this time, outside the repository: from the tarball's vendor/.
      cd "$T/source-project"
      case $(cd node_modules/libshutdown && pwd -P) in "$here"*) echo "building in the repository?" >&2; exit 1 ;; esac
      npx --no-install libshutdown-build
      test -f node_modules/libshutdown/libshutdown.node
      ;;
    source-server)
      export PATH=$NOCARGO_PATH
      cd "$T/source-project" && node check.js '/node_modules/libshutdown/libshutdown\.node$'
      ;;
    *)
      echo "unknown step $step" >&2
      exit 2
      ;;
  esac
  exit 0
fi

# ----- the run ------------------------------------------------------------------------
for tool in node npm tar timeout; do
  command -v "$tool" >/dev/null || { echo "package-test-node: $tool is needed" >&2; exit 1; }
done
T=$(mktemp -d /tmp/libshutdown-package-test.XXXXXX)
if [ "${KEEP:-0}" = 1 ]; then echo "package-test-node: keeping $T"; else trap 'rm -rf "$T"' EXIT; fi
mkdir -p "$T/logs"
# PATH without cargo and rustc: without ~/.cargo/bin (and any directory that has either).
NOCARGO_PATH=
IFS=: read -ra dirs <<<"$PATH"
for d in "${dirs[@]}"; do
  [ -n "$d" ] || continue
  case $d in "${CARGO_HOME:-$HOME/.cargo}/bin" | "$HOME/.cargo/bin") continue ;; esac
  if [ -x "$d/cargo" ] || [ -x "$d/rustc" ]; then continue; fi
  NOCARGO_PATH=${NOCARGO_PATH:+$NOCARGO_PATH:}$d
done
export T NOCARGO_PATH
# What the user's machine has: no addon override, the release build, no cargo override.
unset CARGO RUSTC LIBSHUTDOWN_ADDON LIBSHUTDOWN_PROFILE

passed=0
failed=0
declare -A ok
results=()
# run NAME SECONDS [NEEDS...]: a step, skipped (and failed) when a step it needs failed.
run() {
  local name=$1 limit=$2
  shift 2
  for need in "$@"; do
    if [ "${ok[$need]:-0}" != 1 ]; then
      failed=$((failed + 1))
      results+=("$(printf 'FAIL %-15s    -    (not run: %s failed)' "$name" "$need")")
      echo "package-test-node: FAIL $name (not run: $need failed)"
      return
    fi
  done
  echo "package-test-node: $name ..."
  local start end rc
  start=$(date +%s%N)
  timeout --kill-after=10 "$limit" bash "$here/scripts/package-test.sh" --step "$name" >"$T/logs/$name.log" 2>&1
  rc=$?
  end=$(date +%s%N)
  local secs
  secs=$(awk -v ns=$((end - start)) 'BEGIN { printf "%.1f", ns / 1e9 }')
  if [ $rc = 0 ]; then
    ok[$name]=1
    passed=$((passed + 1))
    results+=("$(printf 'ok   %-15s %6s s' "$name" "$secs")")
    sed 's/^/    /' "$T/logs/$name.log" | tail -n 40
    echo "package-test-node: ok   $name ($secs s)"
  else
    failed=$((failed + 1))
    [ $rc = 124 ] && note=" (timed out after $limit s)" || note=" (exit $rc)"
    results+=("$(printf 'FAIL %-15s %6s s%s' "$name" "$secs" "$note")")
    sed 's/^/    /' "$T/logs/$name.log" | tail -n 80
    echo "package-test-node: FAIL $name ($secs s)$note"
  fi
}

run build 1200
run pack 300 build
run no-cargo 30
run npm-install 600 pack no-cargo
run npm-server 60 npm-install
run npm-tsc 180 npm-install
run pnpm-get 300 no-cargo
run pnpm-install 600 pack pnpm-get
run pnpm-server 60 pnpm-install
run pnpm-tsc 180 pnpm-install
run source-install 600 pack no-cargo
run source-missing 60 source-install
run source-build 1500 source-install
run source-server 60 source-build

echo
echo "package-test-node: steps"
printf '  %s\n' "${results[@]}"
echo "package-test-node: $passed passed, $failed failed"
[ "$failed" = 0 ]
