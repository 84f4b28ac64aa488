# Shared by scripts/serve and scripts/test: make sure the system packages we need exist.
# Installs with apt-get when run as root on Debian/Ubuntu; otherwise prints the command.

softhsm_module() {
  for p in /usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so /usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so \
           /usr/lib/softhsm/libsofthsm2.so /usr/local/lib/softhsm/libsofthsm2.so /opt/homebrew/lib/softhsm/libsofthsm2.so; do
    [ -f "$p" ] && { echo "$p"; return 0; }
  done
  return 1
}

ensure_packages() {
  # ensure_packages "<check command>:<debian package>" ...
  local missing=()
  for pair in "$@"; do
    local check=${pair%%:*} pkg=${pair##*:}
    eval "$check" >/dev/null 2>&1 || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "==> installing ${missing[*]} (apt-get)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "cks-sim needs: ${missing[*]}. Install them with:" >&2
    echo "  sudo apt-get install ${missing[*]}" >&2
    echo "(or set CKS_SIM_PKCS11_MODULE to another PKCS#11 module)" >&2
    exit 1
  fi
}

# What building kryoptic needs on Debian: bindgen's libclang, OpenSSL and SQLite headers.
KRYOPTIC_BUILD_DEPS=(
  "dpkg -s libclang1-14:libclang1-14" "dpkg -s libclang-common-14-dev:libclang-common-14-dev"
  "dpkg -s libssl-dev:libssl-dev" "dpkg -s libsqlite3-dev:libsqlite3-dev" "command -v pkg-config:pkg-config"
)

# Build the kryoptic PKCS#11 module from scripts/kryoptic (pinned by its Cargo.lock) into
# target/kryoptic, once (cargo does nothing when it is up to date), and print its path.
kryoptic_module() {
  local dir=$PWD/target/kryoptic so
  so=$dir/release/libkryoptic_pkcs11.so
  if ! CARGO_TARGET_DIR=$dir cargo build --release --locked --quiet \
         --manifest-path scripts/kryoptic/Cargo.toml >&2; then
    echo "cannot build kryoptic (scripts/kryoptic); it needs: ${KRYOPTIC_BUILD_DEPS[*]##*:}" >&2
    return 1
  fi
  echo "$so"
}

# Render softhsm-conf/softhsm2.conf.in with token directory $1 into $2.
render_softhsm_conf() {
  { echo "# Written by cks-sim from softhsm-conf/softhsm2.conf.in"
    grep -v '^#' softhsm-conf/softhsm2.conf.in | sed "s|@TOKENDIR@|$1|"
  } > "$2"
}
