// The external peer for bench/relay.py: a Node.js relay on the npm `ws` package with vrhub's tick
// design (same handshake and formats): latest frame per participant, one room frame per tick
// (30 Hz) built once per room and sent to every client; a client whose bufferedAmount is over the
// limit skips the tick. GET /stats gives {frames_in, messages_out, superseded}.
//   node bench/node_relay.mjs --port 8092
import http from "node:http";
import { createRequire } from "node:module";
const require = createRequire(import.meta.url);
const { WebSocketServer } = require("ws");

const args = process.argv.slice(2);
const port = Number(args[args.indexOf("--port") + 1] || 8092);
const tickHz = 30;
const LIMIT = 16 * 1024;
const stats = { frames_in: 0, messages_out: 0, superseded: 0 };
const rooms = new Map();
let nextPid = 0;

function getRoom(id) {
  let room = rooms.get(id);
  if (!room) {
    room = { clients: new Map(), pending: new Map(), tick: 0 };
    room.timer = setInterval(() => tick(room), 1000 / tickHz);
    rooms.set(id, room);
  }
  return room;
}

function tick(room) {
  room.tick++;
  if (room.pending.size === 0) return;
  const entries = [...room.pending.values()];
  room.pending.clear();
  const header = Buffer.alloc(7);
  header.writeUInt8(2, 0);
  header.writeUInt32LE(room.tick >>> 0, 1);
  header.writeUInt16LE(entries.length, 5);
  const buf = Buffer.concat([header, ...entries]);
  for (const ws of room.clients.values()) {
    if (ws.bufferedAmount > LIMIT) continue;
    ws.send(buf, { binary: true });
    stats.messages_out++;
  }
}

const server = http.createServer((req, res) => {
  if (req.url === "/stats") {
    res.setHeader("Content-Type", "application/json");
    res.end(JSON.stringify(stats));
  } else {
    res.statusCode = 404;
    res.end();
  }
});
const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false });
server.on("upgrade", (req, socket, head) => {
  const m = /^\/api\/rooms\/([^/?]+)\/ws/.exec(req.url);
  if (!m) return socket.destroy();
  wss.handleUpgrade(req, socket, head, (ws) => onConnection(ws, m[1]));
});

function onConnection(ws, roomId) {
  let pid = 0;
  let room = null;
  ws.on("message", (data, isBinary) => {
    if (!isBinary) {
      if (pid === 0) {
        pid = ++nextPid;
        room = getRoom(roomId);
        ws.send(JSON.stringify({ type: "welcome", participant: pid, tick_hz: tickHz, peers: [] }));
        room.clients.set(pid, ws);
      }
      return;
    }
    if (!room || data.length !== 74 || data[0] !== 1 || data[1] !== 1) return;
    stats.frames_in++;
    const entry = Buffer.allocUnsafe(74);
    entry.writeUInt16LE(pid, 0);
    data.copy(entry, 2, 2);
    if (room.pending.has(pid)) stats.superseded++;
    room.pending.set(pid, entry);
  });
  ws.on("close", () => {
    if (room) {
      room.clients.delete(pid);
      room.pending.delete(pid);
    }
  });
}

server.listen(port, "127.0.0.1");
