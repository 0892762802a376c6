# Sourced by test/setup/services.d/*.sh. `npm test` runs as whoever typed it:
# root in CI, a developer elsewhere. Steps that change the machine (apt-get,
# /etc, /var, starting servers) go through as_root, which uses sudo when the
# caller is not root, as agent/setup/quickstart.sh does. Checks never do, so
# on a machine that is already set up nobody is asked for a password.
as_root() {
  if [ "$(id -u)" -eq 0 ]; then
    "$@"
  elif command -v sudo >/dev/null 2>&1; then
    sudo "$@"
  else
    echo "${0##*/}: ERROR: \`$*\` needs root; run npm test as root or install sudo" >&2
    return 1
  fi
}
