#!/usr/bin/env bash
# Builds the VS Code extension and packages it as editors/vscode/paved.vsix.
set -euo pipefail
cd "$(dirname "$0")"
npm ci --no-audit --no-fund
npm run compile
npx vsce package --allow-missing-repository --skip-license -o paved.vsix
echo "built $(pwd)/paved.vsix"
