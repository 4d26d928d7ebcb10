// A small stand-in for Fly's proxy, for tests only (never shipped): one public address in front of an app's
// machines. A request goes to any running machine; an answer carrying `fly-replay: instance=<id>` is not
// passed on, and the request is sent again to that machine, with `fly-replay-src`, as Fly documents it. A
// machine that is stopped is waited for (Fly starts it on demand), up to the replay's timeout; then, with
// `fallback=force_self`, the request goes back to the machine that asked, with `fly-replay-failed`.
import http from "node:http";
import { Readable } from "node:stream";
import { EventEmitter } from "node:events";

const HOP = new Set(["connection", "keep-alive", "transfer-encoding", "host", "content-length", "upgrade"]);

export async function flyProxy() {
  const machines = new Map(); // id -> { base, up, inFlight }
  const events = new EventEmitter();
  events.setMaxListeners(0);
  const served = []; // { machine, method, path, status }

  const waitUp = (id, ms) =>
    new Promise((resolve) => {
      if (machines.get(id)?.up) return resolve(true);
      const timer = setTimeout(() => {
        events.off(`up:${id}`, onUp);
        resolve(false);
      }, ms);
      const onUp = () => {
        clearTimeout(timer);
        resolve(true);
      };
      events.once(`up:${id}`, onUp);
    });

  const anyUp = async () => {
    for (;;) {
      const up = [...machines.entries()].filter(([, m]) => m.up);
      if (up.length) return up[Math.floor(Math.random() * up.length)][0];
      await new Promise((resolve) => events.once("any-up", resolve));
    }
  };

  // Sends the request to machine `id`; resolves with the fetch response, or null when it cannot connect.
  async function send(id, req, body, extra, signal) {
    const machine = machines.get(id);
    const headers = {};
    for (const [name, value] of Object.entries(req.headers)) if (!HOP.has(name)) headers[name] = value;
    Object.assign(headers, extra);
    // Long-lived streams (GET) are not counted: Fly stops a machine whose requests are done.
    const counted = req.method === "GET" ? 0 : 1;
    machine.inFlight += counted;
    let finished = false;
    const done = () => {
      if (finished) return;
      finished = true;
      machine.inFlight -= counted;
      events.emit(`idle:${id}`);
    };
    try {
      const response = await fetch(machine.base + req.url, {
        method: req.method, headers, body: body.length ? body : undefined, signal, redirect: "manual",
      });
      return { response, done };
    } catch (error) {
      done();
      if (signal.aborted) throw error;
      return null;
    }
  }

  const server = http.createServer(async (req, res) => {
    const at = Date.now();
    const session = Boolean(req.headers["mcp-session-id"]);
    const chunks = [];
    for await (const chunk of req) chunks.push(chunk);
    const body = Buffer.concat(chunks);
    const abort = new AbortController();
    res.on("close", () => abort.abort());
    try {
      let id = await anyUp();
      let sent = await send(id, req, body, {}, abort.signal);
      while (!sent) {
        // A machine stopping as the request came: Fly's proxy tries another.
        id = await anyUp();
        sent = await send(id, req, body, {}, abort.signal);
      }
      const replay = sent.response.headers.get("fly-replay");
      if (replay) {
        sent.done();
        await sent.response.body?.cancel();
        const fields = Object.fromEntries(replay.split(";").map((f) => f.trim().split("=")));
        const timeout = parseFloat(fields.timeout ?? "5") * 1000;
        const target = fields.instance;
        let replayed = null;
        const until = Date.now() + Math.max(timeout, 20_000);
        while (!replayed && machines.has(target) && (await waitUp(target, until - Date.now()))) {
          replayed = await send(target, req, body, { "fly-replay-src": `instance=${id};state=replayed` }, abort.signal);
          // Refused as it stopped: it is marked down first, so the next wait is for its restart.
          if (!replayed && machines.get(target).up) break;
        }
        if (!replayed && fields.fallback === "force_self") {
          await waitUp(id, 20_000);
          replayed = await send(id, req, body, { "fly-replay-failed": "1" }, abort.signal);
          served.push({ machine: id, method: req.method, path: req.url, session, at, fallback: true });
        } else if (replayed) {
          id = target;
        }
        if (!replayed) {
          res.writeHead(502, { "content-type": "text/plain" }).end("replay failed");
          return;
        }
        sent = replayed;
      }
      const { response, done } = sent;
      served.push({ machine: id, method: req.method, path: req.url, session, at, status: response.status });
      const headers = {};
      response.headers.forEach((value, name) => {
        if (!HOP.has(name)) headers[name] = value;
      });
      res.writeHead(response.status, headers);
      if (!response.body) {
        res.end();
        done();
        return;
      }
      const stream = Readable.fromWeb(response.body);
      stream.on("error", () => res.destroy());
      stream.on("close", done);
      stream.pipe(res);
    } catch {
      if (!res.headersSent) res.writeHead(502).end();
      else res.destroy();
    }
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  const base = `http://127.0.0.1:${server.address().port}`;

  return {
    base,
    served,
    /** Machine `id` serves at `machineBase` (started, or started again on a new port). */
    up(id, machineBase) {
      machines.set(id, { base: machineBase, up: true, inFlight: machines.get(id)?.inFlight ?? 0 });
      events.emit(`up:${id}`);
      events.emit("any-up");
    },
    /** No new request goes to machine `id` (as Fly's proxy before it stops an idle machine). */
    down(id) {
      machines.get(id).up = false;
    },
    /** Resolves once no request is in flight to machine `id` but long-lived streams (`GET`s). */
    async idle(id) {
      const machine = machines.get(id);
      while (machine.inFlight > 0) await new Promise((resolve) => events.once(`idle:${id}`, resolve));
    },
    inFlight: (id) => machines.get(id).inFlight,
    close: () => new Promise((resolve) => { server.closeAllConnections(); server.close(resolve); }),
  };
}
