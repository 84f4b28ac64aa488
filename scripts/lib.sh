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
