// Makes the files the web UI loads from the pinned npm packages, so that running it needs no npm:
//   vendor/<package>@<version>/...   the browser builds of the libraries (committed; the version in
//                                    the path lets the server cache them for good)
//   js/templates.gen.js              the Handlebars templates of templates/, precompiled (committed:
//                                    the page then needs only the Handlebars runtime, and no eval)
// Run after `npm ci` when a pin or a template changes. `--check DIR` writes into DIR instead and
// says nothing: the browser tests compare its output with what is committed.
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const modules = join(root, "node_modules");
const checkAt = process.argv.indexOf("--check");
const out = checkAt > 0 ? process.argv[checkAt + 1] : root;

/** [package, file or folder inside the package, destination inside vendor/<package>@<version>/] */
const files = [
  ["oidc-client-ts", "dist/esm/oidc-client-ts.js", "oidc-client-ts.js"],
  ["jwt-decode", "build/esm/index.js", "index.js"],
  ["handlebars", "dist/handlebars.runtime.min.js", "handlebars.runtime.min.js"],
  ["bootstrap", "dist/css/bootstrap.min.css", "bootstrap.min.css"],
  ["bootstrap", "dist/js/bootstrap.bundle.min.js", "bootstrap.bundle.min.js"],
  ["uplot", "dist/uPlot.esm.js", "uPlot.esm.js"],
  ["uplot", "dist/uPlot.min.css", "uPlot.min.css"],
];

const version = (pkg) => JSON.parse(readFileSync(join(modules, pkg, "package.json"), "utf8")).version;
const vendor = join(out, "vendor");
rmSync(vendor, { recursive: true, force: true });
const versions = {};
for (const [pkg, from, to] of files) {
  const src = join(modules, pkg, from);
  if (!existsSync(src)) {
    console.error(`vendor: ${src} is missing; run \`npm ci\` in ${root} first`);
    process.exit(1);
  }
  versions[pkg] = version(pkg);
  const dest = join(vendor, `${pkg}@${versions[pkg]}`, to);
  mkdirSync(dirname(dest), { recursive: true });
  cpSync(src, dest, { recursive: true });
}
// oidc-client-ts imports "jwt-decode" by its bare name; the page has no import map (a content
// security policy without inline scripts), so the import names the vendored file.
const oidc = join(vendor, `oidc-client-ts@${versions["oidc-client-ts"]}`, "oidc-client-ts.js");
writeFileSync(oidc, readFileSync(oidc, "utf8").replace('from "jwt-decode";', `from "../jwt-decode@${versions["jwt-decode"]}/index.js";`));
// Icons: only those the UI uses (`bi-<name>` in templates/ and js/), as CSS masks of the
// package's own SVGs, instead of the whole icon font (87 kB of CSS and a 134 kB font).
versions["bootstrap-icons"] = version("bootstrap-icons");
const sources = (dir) =>
  readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sources(join(dir, e.name)) : /\.(hbs|js|html)$/.test(e.name) && !e.name.endsWith(".gen.js") ? [join(dir, e.name)] : [],
  );
const used = new Set();
for (const f of [...sources(join(root, "templates")), ...sources(join(root, "js")), join(root, "index.html")]) {
  for (const m of readFileSync(f, "utf8").matchAll(/\bbi-([a-z0-9-]+)/g)) used.add(m[1]);
}
const iconCss = [
  `/* bootstrap-icons ${versions["bootstrap-icons"]} (MIT): the icons the UI uses, made by scripts/vendor.mjs. */`,
  ".bi::before{content:\"\";display:inline-block;width:1em;height:1em;vertical-align:-.125em;background-color:currentColor;-webkit-mask:var(--bi) no-repeat center/contain;mask:var(--bi) no-repeat center/contain}",
  ...[...used].sort().map((name) => {
    const svg = readFileSync(join(modules, "bootstrap-icons", "icons", `${name}.svg`), "utf8").replace(/\s+/g, " ").trim();
    return `.bi-${name}{--bi:url("data:image/svg+xml,${encodeURIComponent(svg).replace(/'/g, "%27")}")}`;
  }),
  "",
].join("\n");
mkdirSync(join(vendor, `bootstrap-icons@${versions["bootstrap-icons"]}`), { recursive: true });
writeFileSync(join(vendor, `bootstrap-icons@${versions["bootstrap-icons"]}`, "icons.css"), iconCss);
writeFileSync(join(vendor, "versions.json"), `${JSON.stringify(versions, null, 2)}\n`);

// Templates: one module exporting every precompiled template by name (`partials/x` for partials).
const Handlebars = createRequire(import.meta.url)(join(modules, "handlebars"));
const templates = join(root, "templates");
const walk = (dir) =>
  readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? walk(join(dir, e.name)) : e.name.endsWith(".hbs") ? [join(dir, e.name)] : [],
  );
const entries = walk(templates)
  .map((path) => [relative(templates, path).replace(/\\/g, "/").replace(/\.hbs$/, ""), path])
  .sort(([a], [b]) => a.localeCompare(b))
  .map(([name, path]) => `  ${JSON.stringify(name)}: H.template(${Handlebars.precompile(readFileSync(path, "utf8"))}),`);
const gen = [
  "// Generated by scripts/vendor.mjs from templates/*.hbs (Handlebars precompile): do not edit.",
  "const H = window.Handlebars;",
  "export default {",
  ...entries,
  "};",
  "",
].join("\n");
mkdirSync(join(out, "js"), { recursive: true });
writeFileSync(join(out, "js", "templates.gen.js"), gen);
if (checkAt < 0) {
  console.log(
    `vendor: ${Object.entries(versions)
      .map(([p, v]) => `${p}@${v}`)
      .join(", ")}; ${entries.length} templates precompiled`,
  );
}
