# Sourced by the scripts that take no arguments (test.sh, check-deploy.sh, bench/install-clients.sh):
# usage_or_refuse NAME "$@" <<'USAGE' … USAGE
#   no argument: returns (the script runs); --help or -h: prints the usage given on stdin, exits 0;
#   anything else: one line on stderr, exits 2. Before the script installs, starts or runs anything.
usage_or_refuse() {
  local name="$1"
  shift
  [ $# -eq 0 ] && return 0
  if [ "$1" = --help ] || [ "$1" = -h ]; then
    cat
    exit 0
  fi
  echo "$name: unexpected argument $1; see --help" >&2
  exit 2
}
