// Proves that the committed schema/pipeline.schema.json gives completion,
// hover and diagnostics in the real yaml-language-server (the server behind
// VS Code's YAML extension). Run with `npm test` after `npm ci`.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, readdirSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

import { LspClient } from "./lsp-client.mjs";

const here = dirname(fileURLToPath(import.meta.url));
const repo = resolve(here, "..", "..");
const fixture = (name) => join(here, "fixtures", name);

let client;

before(async () => {
  client = new LspClient();
  await client.initialize(repo);
});

after(async () => {
  await client.close();
});

/** Opens a file from disk; returns its URI and lines. */
function openFile(path) {
  const text = readFileSync(path, "utf8");
  const uri = pathToFileURL(path).href;
  client.open(uri, text);
  return { uri, lines: text.split("\n") };
}

/** Line and column just after `needle` on the first line containing it. */
function after_(lines, needle) {
  const line = lines.findIndex((l) => l.includes(needle));
  assert.ok(line >= 0, `fixture has no line with ${JSON.stringify(needle)}`);
  return { line, character: lines[line].indexOf(needle) + needle.length };
}

const labels = (result) => (Array.isArray(result) ? result : result.items).map((i) => i.label);

test("completion at `plugin: ` lists the six plugins", async () => {
  const { uri, lines } = openFile(fixture("completion.yaml"));
  const pos = after_(lines, "- plugin: ");
  const got = labels(await client.completion(uri, pos.line, pos.character));
  for (const plugin of [
    "azure_llm",
    "azure_multi_query_llm",
    "openrouter_llm",
    "openrouter_multi_query_llm",
    "azure_batch_llm",
    "openrouter_batch_llm",
  ]) {
    assert.ok(got.includes(plugin), `missing ${plugin} in ${JSON.stringify(got)}`);
  }
});

test("completion at `provider: ` lists none, azure_ai and langfuse", async () => {
  const { uri, lines } = openFile(fixture("completion.yaml"));
  const pos = after_(lines, "provider: ");
  const got = labels(await client.completion(uri, pos.line, pos.character));
  assert.deepEqual(
    ["none", "azure_ai", "langfuse"].filter((p) => got.includes(p)),
    ["none", "azure_ai", "langfuse"],
    `got ${JSON.stringify(got)}`,
  );
});

test("inside a langfuse tracing block the Langfuse keys are offered", async () => {
  const { uri, lines } = openFile(fixture("langfuse.yaml"));
  const provider = lines.findIndex((l) => l.includes("provider: langfuse"));
  // The blank line right under `provider: langfuse`, at the block's indentation.
  const got = labels(await client.completion(uri, provider + 1, 8));
  for (const key of ["public_key", "secret_key", "host"]) {
    assert.ok(got.includes(key), `missing ${key} in ${JSON.stringify(got)}`);
  }
  assert.ok(!got.includes("connection_string"), "azure_ai's key offered in a langfuse block");
});

test("hover on enable_content_recording shows its description", async () => {
  const { uri, lines } = openFile(fixture("langfuse.yaml"));
  const pos = after_(lines, "enable_content");
  const hover = await client.hover(uri, pos.line, pos.character - 3);
  const text = JSON.stringify(hover?.contents ?? "");
  assert.match(text, /prompt and response/i, `hover was ${text}`);
});

test("a misspelt key and an azure_ai block without connection_string are flagged", async () => {
  const { uri } = openFile(fixture("mistakes.yaml"));
  const diags = await client.diagnosticsFor(uri, (d) => d.length >= 2);
  const messages = diags.map((d) => `${d.range.start.line}: ${d.message}`);
  const misspelt = diags.find((d) => /promt_template/.test(d.message) || d.range.start.line === 9);
  assert.ok(misspelt, `no diagnostic for promt_template: ${JSON.stringify(messages)}`);
  const missing = diags.find((d) => /connection_string/.test(d.message));
  assert.ok(missing, `no diagnostic for the missing connection_string: ${JSON.stringify(messages)}`);
});

test("every example pipeline opens with no schema diagnostics", async () => {
  const dir = join(repo, "examples", "pipelines");
  const files = readdirSync(dir).filter((f) => f.endsWith(".yaml"));
  assert.ok(files.length >= 18, `expected the plugin × provider examples, found ${files.length}`);
  for (const f of files) {
    const { uri } = openFile(join(dir, f));
    // A schema-backed document gets a publishDiagnostics; an empty list is the pass.
    const diags = await client.diagnosticsFor(uri);
    assert.deepEqual(
      diags.map((d) => d.message),
      [],
      `${f} has editor diagnostics`,
    );
  }
});
