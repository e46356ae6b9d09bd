# Sourced by tools/kernel_headers.sh, tools/cross_sysroot.sh and tools/qemu/fetch_kernel.sh:
# apt-get with a private sources list, state, lists and cache directories, for DOWNLOADING
# packages of other Debian suites (and arches) without touching the system's apt configuration
# or state. Nothing is ever installed.
#
#   private_apt_init DIR SUITE...    lists for these suites under DIR (apt-get update); with
#                                    PRIVATE_APT_ARCH=arm64 (say) set, of that arch only.
#                                    Progress goes to stderr.
#   private_apt_versions PKG SUITE   the versions of PKG that SUITE has, one a line
#   private_apt_fetch PKG=VER DEST   downloads PKG=VER and unpacks it (dpkg-deb -x) into DEST
# After private_apt_init, "${private_apt_opts[@]}" gives apt-get and apt-cache the same setup.

private_apt_die() {
  echo "$(basename "$0"): $*" >&2
  exit 1
}

# The archive the system's own sources name (deb822 .sources first, then sources.list).
private_apt_uri() {
  local uri
  uri="$(grep -h -E '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '{print $2}' |
    head -n 1 || true)"
  if [[ -z "$uri" ]]; then
    uri="$(grep -h -E '^deb ' /etc/apt/sources.list 2>/dev/null | awk '{print $2}' |
      head -n 1 || true)"
  fi
  [[ -n "$uri" ]] || private_apt_die "no Debian archive URI in /etc/apt/sources.list.d/*.sources"
  echo "$uri"
}

private_apt_init() {
  local dir="$1" uri suite arch_option=""
  shift
  private_apt_opts=(
    -o "Dir::Etc::sourcelist=$dir/sources.list"
    -o "Dir::Etc::sourceparts=-"
    -o "Dir::State::Lists=$dir/lists"
    -o "Dir::Cache=$dir"
    -o "Dir::Cache::archives=$dir/archives"
    -o "Dir::State::status=$dir/status"
    -o "APT::Sandbox::User=root"
    -o "Debug::NoLocking=1"
  )
  if [[ -n "${PRIVATE_APT_ARCH:-}" ]]; then
    private_apt_opts+=(-o "APT::Architecture=$PRIVATE_APT_ARCH"
      -o "APT::Architectures=$PRIVATE_APT_ARCH")
    arch_option="arch=$PRIVATE_APT_ARCH "
  fi
  uri="$(private_apt_uri)"
  mkdir -p "$dir/lists/partial" "$dir/archives/partial"
  : >"$dir/status"
  : >"$dir/sources.list"
  for suite in "$@"; do
    echo "deb [${arch_option}signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $uri $suite main" \
      >>"$dir/sources.list"
  done
  echo "$(basename "$0"): apt-get update (private lists under $dir; $uri: $*${PRIVATE_APT_ARCH:+, $PRIVATE_APT_ARCH})" >&2
  apt-get "${private_apt_opts[@]}" -q update >"$dir/update.log" 2>&1 ||
    private_apt_die "apt-get update failed: $(tail -n 3 "$dir/update.log")"
}

private_apt_versions() {
  apt-cache "${private_apt_opts[@]}" madison "$1" 2>/dev/null |
    awk -F'|' -v s=" $2/" 'index($3, s) {gsub(/ /, "", $2); print $2}' || true
}

private_apt_fetch() {
  local spec="$1" dest="$2" work
  work="$(mktemp -d "${dest%/*}/.fetch.XXXXXX")"
  (cd "$work" && apt-get "${private_apt_opts[@]}" -q download "$spec" >download.log 2>&1) ||
    private_apt_die "apt-get download $spec failed: $(tail -n 3 "$work/download.log")"
  mkdir -p "$dest"
  dpkg-deb -x "$work"/*.deb "$dest"
  rm -rf "$work"
}
