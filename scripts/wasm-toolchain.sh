#!/usr/bin/env bash
# Makes sure a Rust toolchain can build the connectors (plugins/) for
# wasm32-unknown-unknown, as host/build.rs needs. Idempotent, and silent when
# everything is already there.
#
# In order of preference:
#   1. rustup's wasm32-unknown-unknown target (what most developers have),
#      or Debian's recipe below when it is already installed;
#   2. `rustup target add wasm32-unknown-unknown` (bounded: it may have no
#      network to reach rustup's servers);
#   3. Debian's rustc-web, cargo-web and rust-web-src (apt, as root): host/build.rs
#      then builds std for wasm32 from source with -Zbuild-std.
# Otherwise it says what to install and exits 1.
set -euo pipefail

TARGET=wasm32-unknown-unknown
DEBIAN_PACKAGES=(rustc-web cargo-web rust-web-src)

say() { printf 'wasm-toolchain: %s\n' "$*" >&2; }

rustup_has_target() {
    command -v rustc >/dev/null 2>&1 || return 1
    local sysroot
    sysroot="$(rustc --print sysroot 2>/dev/null)" || return 1
    [ -d "$sysroot/lib/rustlib/$TARGET/lib" ]
}

debian_ready() {
    [ -x /usr/bin/cargo ] && [ -x /usr/bin/rustc ] && [ -d /usr/lib/rustlib/src/rust/library ]
}

# The Debian recipe links with rustup's rust-lld (or any rust-lld/wasm-ld).
linker_available() {
    if command -v rustc >/dev/null 2>&1; then
        local sysroot host
        sysroot="$(rustc --print sysroot 2>/dev/null)" || sysroot=""
        host="$(rustc -vV 2>/dev/null | sed -n 's/^host: //p')"
        [ -n "$sysroot" ] && [ -x "$sysroot/lib/rustlib/$host/bin/rust-lld" ] && return 0
    fi
    command -v rust-lld >/dev/null 2>&1 || command -v wasm-ld >/dev/null 2>&1
}

if rustup_has_target; then
    exit 0
fi

# Already set up for the Debian recipe: do not spend time asking rustup.
if debian_ready && linker_available; then
    exit 0
fi

if command -v rustup >/dev/null 2>&1; then
    if timeout 20 rustup target add "$TARGET" >/dev/null 2>&1 && rustup_has_target; then
        say "installed rustup target $TARGET"
        exit 0
    fi
fi

if ! debian_ready; then
    if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
        say "installing ${DEBIAN_PACKAGES[*]} (Debian's Rust with its std sources)"
        missing=()
        for pkg in "${DEBIAN_PACKAGES[@]}"; do
            dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
        done
        if [ "${#missing[@]}" -gt 0 ]; then
            export DEBIAN_FRONTEND=noninteractive
            apt-get update -qq
            apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
        fi
    fi
fi

if debian_ready; then
    if linker_available; then
        exit 0
    fi
    say "Debian's Rust is installed but no wasm linker was found:"
    say "  install rustup's toolchain (it ships rust-lld) or Debian's lld (wasm-ld)"
    exit 1
fi

say "no toolchain can build the connectors for $TARGET. Install one of:"
say "  - rustup target add $TARGET"
say "  - (Debian, as root) apt-get install --no-install-recommends ${DEBIAN_PACKAGES[*]}"
say "or point PASSERELLE_WASM_CARGO at a cargo whose rustc has the $TARGET target."
exit 1
