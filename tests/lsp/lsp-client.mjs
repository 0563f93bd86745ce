// A minimal Language Server Protocol client over stdio (JSON-RPC with
// Content-Length framing), enough to drive yaml-language-server in tests.

import { spawn } from "node:child_process";
import { createRequire } from "node:module";
import { pathToFileURL } from "node:url";

const require = createRequire(import.meta.url);

/** Path of the yaml-language-server entry point installed by `npm ci`. */
export function serverPath() {
  return require.resolve("yaml-language-server/bin/yaml-language-server");
}

/** Settings the tests give the server: no network (SchemaStore off). */
export const SETTINGS = {
  yaml: {
    validate: true,
    hover: true,
    completion: true,
    format: { enable: false },
    schemaStore: { enable: false },
    schemas: {},
  },
  "[yaml]": {},
};

export class LspClient {
  constructor() {
    this.proc = spawn(process.execPath, [serverPath(), "--stdio"], {
      stdio: ["pipe", "pipe", "pipe"],
    });
    this.nextId = 1;
    this.pending = new Map();
    this.diagnostics = new Map();
    this.diagnosticWaiters = [];
    this.buffer = Buffer.alloc(0);
    this.stderr = "";
    this.proc.stdout.on("data", (chunk) => this.#onData(chunk));
    this.proc.stderr.on("data", (chunk) => (this.stderr += chunk));
  }

  #onData(chunk) {
    this.buffer = Buffer.concat([this.buffer, chunk]);
    for (;;) {
      const headerEnd = this.buffer.indexOf("\r\n\r\n");
      if (headerEnd < 0) return;
      const header = this.buffer.subarray(0, headerEnd).toString("ascii");
      const match = /Content-Length: (\d+)/i.exec(header);
      if (!match) throw new Error(`bad LSP header: ${header}`);
      const length = Number(match[1]);
      const start = headerEnd + 4;
      if (this.buffer.length < start + length) return;
      const body = this.buffer.subarray(start, start + length).toString("utf8");
      this.buffer = this.buffer.subarray(start + length);
      this.#onMessage(JSON.parse(body));
    }
  }

  #onMessage(msg) {
    if (msg.id !== undefined && (msg.result !== undefined || msg.error !== undefined) && this.pending.has(msg.id)) {
      const { resolve, reject } = this.pending.get(msg.id);
      this.pending.delete(msg.id);
      if (msg.error) reject(new Error(`${msg.error.code}: ${msg.error.message}`));
      else resolve(msg.result);
      return;
    }
    if (msg.method === "workspace/configuration") {
      // One settings object per requested item.
      const result = msg.params.items.map((item) => {
        if (!item.section) return SETTINGS;
        return item.section.split(".").reduce((acc, k) => (acc ? acc[k] : undefined), SETTINGS) ?? null;
      });
      this.#send({ jsonrpc: "2.0", id: msg.id, result });
      return;
    }
    if (msg.method === "textDocument/publishDiagnostics") {
      this.diagnostics.set(msg.params.uri, msg.params.diagnostics);
      for (const w of this.diagnosticWaiters.splice(0)) w();
      return;
    }
    if (msg.id !== undefined && msg.method) {
      // Any other server → client request: answer null.
      this.#send({ jsonrpc: "2.0", id: msg.id, result: null });
    }
  }

  #send(msg) {
    const body = Buffer.from(JSON.stringify(msg), "utf8");
    this.proc.stdin.write(`Content-Length: ${body.length}\r\n\r\n`);
    this.proc.stdin.write(body);
  }

  request(method, params, timeoutMs = 20000) {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`${method} timed out; server stderr:\n${this.stderr}`));
      }, timeoutMs);
      this.pending.set(id, {
        resolve: (v) => (clearTimeout(timer), resolve(v)),
        reject: (e) => (clearTimeout(timer), reject(e)),
      });
      this.#send({ jsonrpc: "2.0", id, method, params });
    });
  }

  notify(method, params) {
    this.#send({ jsonrpc: "2.0", method, params });
  }

  async initialize(rootDir) {
    const result = await this.request("initialize", {
      processId: process.pid,
      rootUri: pathToFileURL(rootDir).href,
      capabilities: {
        textDocument: {
          completion: { completionItem: { snippetSupport: true, documentationFormat: ["markdown", "plaintext"] } },
          hover: { contentFormat: ["markdown", "plaintext"] },
          publishDiagnostics: {},
        },
        workspace: { configuration: true, didChangeConfiguration: { dynamicRegistration: true } },
      },
      initializationOptions: {},
    });
    this.notify("initialized", {});
    this.notify("workspace/didChangeConfiguration", { settings: SETTINGS });
    return result;
  }

  open(uri, text) {
    this.notify("textDocument/didOpen", {
      textDocument: { uri, languageId: "yaml", version: 1, text },
    });
  }

  /** Waits until diagnostics for `uri` satisfy `predicate` (or times out). */
  async diagnosticsFor(uri, predicate = () => true, timeoutMs = 20000) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const d = this.diagnostics.get(uri);
      if (d && predicate(d)) return d;
      const left = deadline - Date.now();
      if (left <= 0) {
        throw new Error(`no matching diagnostics for ${uri}; last: ${JSON.stringify(d)}\nstderr: ${this.stderr}`);
      }
      await new Promise((resolve) => {
        const t = setTimeout(resolve, Math.min(left, 500));
        this.diagnosticWaiters.push(() => (clearTimeout(t), resolve()));
      });
    }
  }

  completion(uri, line, character) {
    return this.request("textDocument/completion", { textDocument: { uri }, position: { line, character } });
  }

  hover(uri, line, character) {
    return this.request("textDocument/hover", { textDocument: { uri }, position: { line, character } });
  }

  async close() {
    try {
      await this.request("shutdown", null, 5000);
      this.notify("exit", null);
    } catch {
      // ignore: the process is killed below anyway
    }
    this.proc.kill();
  }
}
