// The rooms wire format (docs/protocol.md, vrhub/rooms/protocol.py), little-endian.
//
// Expression frame, client -> hub, 74 bytes:
//   version u8 | kind u8 | seq u16 | capture ms u32 | quaternion 4 x i16 (x, y, z, w; *32767)
//   | head position mm 3 x i16 | 52 ARKit weights u8 (0..255)
// Room frame, hub -> client: kind u8 (2) | tick u32 | count u16 | count x (participant u16 + 72-byte body)

export const PROTOCOL_VERSION = 1;
export const KIND_EXPRESSION = 1;
export const KIND_ROOM = 2;
export const EXPRESSION_FRAME_SIZE = 74;
export const ROOM_HEADER_SIZE = 7;
export const ROOM_ENTRY_SIZE = 74;
export const QUAT_SCALE = 32767;

export const ARKIT_BLENDSHAPES = [
  "eyeBlinkLeft", "eyeLookDownLeft", "eyeLookInLeft", "eyeLookOutLeft", "eyeLookUpLeft",
  "eyeSquintLeft", "eyeWideLeft", "eyeBlinkRight", "eyeLookDownRight", "eyeLookInRight",
  "eyeLookOutRight", "eyeLookUpRight", "eyeSquintRight", "eyeWideRight", "jawForward",
  "jawLeft", "jawRight", "jawOpen", "mouthClose", "mouthFunnel", "mouthPucker", "mouthLeft",
  "mouthRight", "mouthSmileLeft", "mouthSmileRight", "mouthFrownLeft", "mouthFrownRight",
  "mouthDimpleLeft", "mouthDimpleRight", "mouthStretchLeft", "mouthStretchRight",
  "mouthRollLower", "mouthRollUpper", "mouthShrugLower", "mouthShrugUpper", "mouthPressLeft",
  "mouthPressRight", "mouthLowerDownLeft", "mouthLowerDownRight", "mouthUpperUpLeft",
  "mouthUpperUpRight", "browDownLeft", "browDownRight", "browInnerUp", "browOuterUpLeft",
  "browOuterUpRight", "cheekPuff", "cheekSquintLeft", "cheekSquintRight", "noseSneerLeft",
  "noseSneerRight", "tongueOut",
];

const clamp = (v, lo, hi) => (v < lo ? lo : v > hi ? hi : v);

/**
 * Pack one expression frame.
 * @param {number} seq counter (wraps at 65536)
 * @param {number} captureMs sender clock in ms (wraps at 2^32)
 * @param {ArrayLike<number>} weights 52 floats 0..1 in ARKit order
 * @param {number[]} quaternion [x, y, z, w]
 * @param {number[]} positionMm [x, y, z]
 * @returns {ArrayBuffer} 74 bytes
 */
export function encodeExpressionFrame(seq, captureMs, weights, quaternion = [0, 0, 0, 1], positionMm = [0, 0, 0]) {
  if (weights.length !== 52) throw new Error(`expected 52 weights, got ${weights.length}`);
  const buf = new ArrayBuffer(EXPRESSION_FRAME_SIZE);
  const view = new DataView(buf);
  view.setUint8(0, PROTOCOL_VERSION);
  view.setUint8(1, KIND_EXPRESSION);
  view.setUint16(2, seq & 0xffff, true);
  view.setUint32(4, captureMs >>> 0, true);
  const norm = Math.hypot(...quaternion) || 1;
  quaternion.forEach((q, i) => view.setInt16(8 + 2 * i, Math.round(clamp(q / norm, -1, 1) * QUAT_SCALE), true));
  positionMm.forEach((p, i) => view.setInt16(16 + 2 * i, Math.round(clamp(p, -32767, 32767)), true));
  for (let i = 0; i < 52; i++) view.setUint8(22 + i, Math.round(clamp(Number(weights[i]) || 0, 0, 1) * 255));
  return buf;
}

/**
 * Decode a room frame.
 * @param {ArrayBuffer} buf
 * @returns {{tick: number, frames: Map<number, {seq, captureMs, rotation: number[], positionMm: number[], weights: Float32Array}>}}
 */
export function decodeRoomFrame(buf) {
  const view = new DataView(buf);
  if (buf.byteLength < ROOM_HEADER_SIZE) throw new Error("room frame shorter than its header");
  const kind = view.getUint8(0);
  if (kind !== KIND_ROOM) throw new Error(`frame kind ${kind} is not a room frame`);
  const tick = view.getUint32(1, true);
  const count = view.getUint16(5, true);
  if (buf.byteLength !== ROOM_HEADER_SIZE + count * ROOM_ENTRY_SIZE) throw new Error("room frame length does not match its count");
  const frames = new Map();
  for (let k = 0; k < count; k++) {
    const o = ROOM_HEADER_SIZE + k * ROOM_ENTRY_SIZE;
    const weights = new Float32Array(52);
    for (let i = 0; i < 52; i++) weights[i] = view.getUint8(o + 22 + i) / 255;
    frames.set(view.getUint16(o, true), {
      seq: view.getUint16(o + 2, true),
      captureMs: view.getUint32(o + 4, true),
      rotation: [0, 1, 2, 3].map((i) => view.getInt16(o + 8 + 2 * i, true) / QUAT_SCALE),
      positionMm: [0, 1, 2].map((i) => view.getInt16(o + 16 + 2 * i, true)),
      weights,
    });
  }
  return { tick, frames };
}
