// Copies the browser builds of the pinned npm packages from node_modules into vendor/, the only
// place index.html loads libraries from. Run after `npm ci`; vendor/ is generated, not committed.
import { cpSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const modules = join(root, "node_modules");
const vendor = join(root, "vendor");

/** [package, file or folder inside the package, destination inside vendor/] */
const files = [
  ["oidc-client-ts", "dist/esm/oidc-client-ts.js", "oidc-client-ts/oidc-client-ts.js"],
  ["jwt-decode", "build/esm/index.js", "jwt-decode/index.js"],
  ["handlebars", "dist/handlebars.min.js", "handlebars/handlebars.min.js"],
  ["bootstrap", "dist/css/bootstrap.min.css", "bootstrap/bootstrap.min.css"],
  ["bootstrap", "dist/js/bootstrap.bundle.min.js", "bootstrap/bootstrap.bundle.min.js"],
  ["bootstrap-icons", "font/bootstrap-icons.min.css", "bootstrap-icons/bootstrap-icons.min.css"],
  ["bootstrap-icons", "font/fonts", "bootstrap-icons/fonts"],
  ["uplot", "dist/uPlot.esm.js", "uplot/uPlot.esm.js"],
  ["uplot", "dist/uPlot.min.css", "uplot/uPlot.min.css"],
];

rmSync(vendor, { recursive: true, force: true });
const versions = {};
for (const [pkg, from, to] of files) {
  const src = join(modules, pkg, from);
  if (!existsSync(src)) {
    console.error(`vendor: ${src} is missing; run \`npm ci\` in ${root} first`);
    process.exit(1);
  }
  const dest = join(vendor, to);
  mkdirSync(dirname(dest), { recursive: true });
  cpSync(src, dest, { recursive: true });
  versions[pkg] = JSON.parse(readFileSync(join(modules, pkg, "package.json"), "utf8")).version;
}
writeFileSync(join(vendor, "versions.json"), `${JSON.stringify(versions, null, 2)}\n`);
console.log(
  `vendor: ${Object.entries(versions)
    .map(([p, v]) => `${p}@${v}`)
    .join(", ")}`,
);
