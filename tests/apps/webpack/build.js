// Builds the webpack app into dist/ (webpack's Node API, as webpack-cli would) and adds its page.
import webpack from "webpack";
import { copyFile } from "node:fs/promises";
import { join } from "node:path";
import config from "./webpack.config.js";

const stats = await new Promise((resolve, reject) => webpack(config, (err, s) => (err ? reject(err) : resolve(s))));
if (stats.hasErrors()) {
  console.error(stats.toString({ colors: false, all: false, errors: true, errorDetails: true }));
  process.exit(1);
}
console.log(stats.toString({ colors: false, all: false, assets: true, warnings: true }));
await copyFile(join(config.context, "index.html"), join(config.output.path, "index.html"));
