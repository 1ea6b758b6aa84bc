// A room connection: JSON control messages and binary frames over GET /api/rooms/{room}/ws.
//
// Events (CustomEvent, detail in brackets): welcome [msg], joined [peer], left [msg], avatar_ready [msg],
// frames [{tick, frames: Map}], error [{code, message}], close [{code, reason}].

import { decodeRoomFrame } from "./protocol.js";

const CLOSE_WORDS = {
  4400: "the hub did not understand this page's messages",
  4401: "this room needs an invitation (token)",
  4403: "you may not join this room",
  4408: "the connection was idle for too long",
  4409: "the room is full",
  4413: "a message was too large",
  4429: "too many frames were sent",
  4503: "the connection was too slow to keep up",
  1001: "the hub is restarting",
  1006: "the connection to the hub was lost",
};

export function closeWords(code, reason) {
  const words = CLOSE_WORDS[code] || `the connection closed (code ${code})`;
  return reason ? `${words}: ${reason}` : words;
}

export class RoomClient extends EventTarget {
  constructor() {
    super();
    this.ws = null;
    this.participant = null;
    this.peers = new Map(); // participant id -> {participant, name, avatar_id, avatar_url}
    this.lastSent = 0;
  }

  get connected() {
    return this.ws !== null && this.ws.readyState === WebSocket.OPEN;
  }

  emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }

  /** Join ``room`` as ``name`` (showing ``avatarId`` when given). Resolves with the welcome message. */
  join(room, name, avatarId = null, token = null) {
    this.leave();
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    let url = `${scheme}://${location.host}/api/rooms/${encodeURIComponent(room)}/ws`;
    if (token) url += `?token=${encodeURIComponent(token)}`;
    const ws = new WebSocket(url);
    ws.binaryType = "arraybuffer";
    this.ws = ws;
    this.room = room;
    return new Promise((resolve, reject) => {
      let welcomed = false;
      ws.onopen = () => this.sendJson({ type: "hello", name, avatar_id: avatarId }, ws);
      ws.onmessage = (event) => {
        if (typeof event.data !== "string") {
          try {
            const frame = decodeRoomFrame(event.data);
            frame.frames.delete(this.participant); // our own frame may ride along
            if (frame.frames.size) this.emit("frames", frame);
          } catch (err) {
            this.emit("error", { code: "bad_room_frame", message: err.message });
          }
          return;
        }
        let msg;
        try {
          msg = JSON.parse(event.data);
        } catch {
          return;
        }
        switch (msg.type) {
          case "welcome":
            welcomed = true;
            this.participant = msg.participant;
            this.startKeepAlive(ws, Number(msg.idle_timeout) || 0);
            this.peers = new Map((msg.peers || []).map((p) => [p.participant, p]));
            this.emit("welcome", msg);
            resolve(msg);
            break;
          case "joined":
            this.peers.set(msg.participant, msg);
            this.emit("joined", msg);
            break;
          case "left":
            this.peers.delete(msg.participant);
            this.emit("left", msg);
            break;
          case "avatar_ready": {
            const peer = this.peers.get(msg.participant);
            if (peer) Object.assign(peer, { avatar_id: msg.avatar_id, avatar_url: msg.avatar_url });
            this.emit("avatar_ready", msg);
            break;
          }
          case "error":
            this.emit("error", msg);
            break;
          default:
            break; // pong and future message types
        }
      };
      ws.onclose = (event) => {
        if (ws.keepAlive) clearInterval(ws.keepAlive);
        if (this.ws !== ws && this.ws !== null) return; // an older socket, replaced by a new join
        if (this.ws === ws) this.ws = null;
        const detail = { code: event.code, reason: event.reason, words: closeWords(event.code, event.reason) };
        if (!welcomed) reject(new Error(detail.words));
        this.emit("close", detail);
      };
    });
  }

  sendJson(message, ws = this.ws) {
    if (!ws || ws.readyState !== WebSocket.OPEN) return;
    ws.send(JSON.stringify(message));
    this.lastSent = performance.now();
  }

  /** A watcher that sends no frames still pings, so the hub's idle timeout does not close it. */
  startKeepAlive(ws, idleTimeoutSeconds) {
    if (!(idleTimeoutSeconds > 0)) return;
    // silent for a quarter of the timeout -> ping; checked 4 times as often (gaps stay well under it
    // even when the page's main thread is busy for a few seconds)
    const every = Math.max(200, (idleTimeoutSeconds * 1000) / 4);
    this.lastSent = performance.now();
    ws.keepAlive = setInterval(() => {
      if (performance.now() - this.lastSent >= every) this.sendJson({ type: "ping", t: Date.now() >>> 0 }, ws);
    }, every / 4);
  }

  setAvatar(avatarId) {
    this.sendJson({ type: "set_avatar", avatar_id: avatarId });
  }

  /** Send one 74-byte expression frame; skipped while the socket is backed up. */
  sendFrame(buffer) {
    if (!this.connected || this.ws.bufferedAmount > 4 * 74) return false;
    this.ws.send(buffer);
    this.lastSent = performance.now();
    return true;
  }

  leave() {
    if (this.ws) {
      const ws = this.ws;
      this.ws = null;
      try {
        if (ws.keepAlive) clearInterval(ws.keepAlive);
        if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify({ type: "leave" }));
        ws.close(1000, "left");
      } catch {
        /* already closed */
      }
    }
    this.participant = null;
    this.peers = new Map();
  }
}
