// The Deno side of bench/bench_sandbox.py: a host loop that runs submitted code, one JSON object per line.
//
// host -> runner: {"code": "..."}          run the code as the body of an async function of `call`
//                 {"code": "...", "fresh": true}   the same in a new Worker (its own isolate), ended after
// runner -> host: {"call": name, "args": ..., "id": n}   the code awaits call(name, args)
// host -> runner: {"id": n, "value": ...} or {"id": n, "error": "..."}
// runner -> host: {"result": ...} or {"error": "..."}     the code returned or threw
// The runner needs no permission: stdin and stdout are open to every Deno program. It exits at EOF. One
// snippet runs at a time; all but the fresh ones share this isolate and its globals.

type Message = { code?: string; fresh?: boolean; id?: number; value?: unknown; error?: string };

const AsyncFunction = Object.getPrototypeOf(async function () {}).constructor;
// What a fresh Worker runs: the same evaluation, its host calls relayed through this runner.
const WORKER = `
const AsyncFunction = Object.getPrototypeOf(async function () {}).constructor;
const pending = new Map();
let nextId = 0;
const call = (name, args) => new Promise((resolve, reject) => {
  const id = nextId++;
  pending.set(id, { resolve, reject });
  self.postMessage({ call: name, args, id });
});
self.onmessage = async (event) => {
  const message = event.data;
  if (message.code !== undefined) {
    try { self.postMessage({ result: (await new AsyncFunction("call", message.code)(call)) ?? null }); }
    catch (error) { self.postMessage({ error: String(error) }); }
    return;
  }
  const waiter = pending.get(message.id);
  pending.delete(message.id);
  if (message.error !== undefined) waiter?.reject(new Error(message.error));
  else waiter?.resolve(message.value);
};`;
const workerUrl = URL.createObjectURL(new Blob([WORKER], { type: "application/javascript" }));
let worker: Worker | null = null;
const encoder = new TextEncoder();
const pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
let nextId = 0;
let writing: Promise<void> = Promise.resolve();

function send(message: unknown): Promise<void> {
  const bytes = encoder.encode(JSON.stringify(message) + "\n");
  writing = writing.then(async () => {
    let written = 0;
    while (written < bytes.length) written += await Deno.stdout.write(bytes.subarray(written));
  });
  return writing;
}

function call(name: string, args: unknown): Promise<unknown> {
  const id = nextId++;
  return new Promise((resolve, reject) => {
    pending.set(id, { resolve, reject });
    send({ call: name, args, id });
  });
}

async function run(code: string): Promise<void> {
  try {
    const result = await new AsyncFunction("call", code)(call);
    await send({ result: result ?? null });
  } catch (error) {
    await send({ error: String(error) });
  }
}

function runFresh(code: string): void {
  const fresh = new Worker(workerUrl, { type: "module" });
  worker = fresh;
  fresh.onmessage = (event) => {
    if (event.data.call === undefined) {
      fresh.terminate();
      worker = null;
    }
    send(event.data);
  };
  fresh.postMessage({ code });
}

function handle(line: string): void {
  const message: Message = JSON.parse(line);
  if (message.code !== undefined) {
    if (message.fresh) runFresh(message.code);
    else run(message.code);
    return;
  }
  if (worker) {
    worker.postMessage(message);
    return;
  }
  const waiter = pending.get(message.id!);
  pending.delete(message.id!);
  if (message.error !== undefined) waiter?.reject(new Error(message.error));
  else waiter?.resolve(message.value);
}

let buffered = "";
for await (const chunk of Deno.stdin.readable.pipeThrough(new TextDecoderStream())) {
  buffered += chunk;
  let newline: number;
  while ((newline = buffered.indexOf("\n")) >= 0) {
    const line = buffered.slice(0, newline);
    buffered = buffered.slice(newline + 1);
    if (line.trim()) handle(line);
  }
}
Deno.exit(0); // a Worker still running would keep the process alive
