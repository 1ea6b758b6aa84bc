// The page: wires the three steps (avatar, room, camera) to the viewer and the status line.

import { Viewer } from "./viewer.js";
import { createAvatar, errorMessage } from "./upload.js";
import { RoomClient } from "./room.js";
import { WebcamTracker } from "./tracking.js";
import { ARKIT_BLENDSHAPES, encodeExpressionFrame } from "./protocol.js";

const $ = (id) => document.getElementById(id);
const ME = "me";

const state = {
  avatarId: null,
  glbUrl: null,
  weights: new Float64Array(52), // my current 52 weights (sliders or camera)
  quaternion: [0, 0, 0, 1],
  positionMm: [0, 0, 0],
  seq: 0,
  tracking: false,
  sliderInputs: new Map(),
  framesSinceSliderSync: 0,
};

function status(text, kind = "") {
  const el = $("status");
  el.textContent = text;
  el.className = `status ${kind}`;
}

function showError(err) {
  const message = err && err.message ? err.message : String(err);
  status(`Sorry — ${message}`, "error");
  console.warn("vrhub:", message);
}

window.addEventListener("unhandledrejection", (e) => showError(e.reason));

const viewer = new Viewer($("view"));
viewer.ensureSlot(ME, "");
const room = new RoomClient();
let tracker = null;

// ----------------------------------------------------------------------------- sliders

function buildSliders(names) {
  const box = $("sliders");
  box.replaceChildren();
  state.sliderInputs.clear();
  if (!names.length) {
    box.innerHTML = '<p class="small">This avatar has no expressions.</p>';
    return;
  }
  for (const name of names) {
    const label = document.createElement("label");
    label.textContent = name;
    const input = document.createElement("input");
    input.type = "range";
    input.min = "0";
    input.max = "1";
    input.step = "0.01";
    input.value = "0";
    input.dataset.name = name;
    input.addEventListener("input", () => {
      const value = Number(input.value);
      viewer.setWeight(ME, name, value);
      const k = ARKIT_BLENDSHAPES.indexOf(name);
      if (k >= 0) {
        state.weights[k] = value;
        if (!state.tracking) sendMyFrame();
      }
    });
    label.appendChild(input);
    box.appendChild(label);
    state.sliderInputs.set(name, input);
  }
}

function syncSliders() {
  ARKIT_BLENDSHAPES.forEach((name, i) => {
    const input = state.sliderInputs.get(name);
    if (input) input.value = String(state.weights[i]);
  });
}

$("reset").addEventListener("click", () => {
  for (const [name, input] of state.sliderInputs) {
    input.value = "0";
    viewer.setWeight(ME, name, 0);
  }
  state.weights.fill(0);
  sendMyFrame();
});

// ----------------------------------------------------------------------------- step 1: avatar

function showNotes(notes) {
  const list = $("notes");
  list.replaceChildren();
  for (const note of notes) {
    const li = document.createElement("li");
    li.textContent = note;
    list.appendChild(li);
  }
  list.hidden = notes.length === 0;
}

async function showMyAvatar(avatarId, glbUrl) {
  state.avatarId = avatarId;
  state.glbUrl = glbUrl;
  status("Loading your avatar into the 3D view…");
  const names = await viewer.loadAvatar(ME, glbUrl, $("name").value.trim() || "");
  buildSliders(names);
  $("sliders-box").open = true;
  $("avatar-info").textContent = `Avatar ${avatarId} · ${names.length} expressions`;
  try {
    localStorage.setItem("vrhub.avatar", JSON.stringify({ id: avatarId, glb: glbUrl }));
  } catch {
    /* private mode */
  }
  if (room.connected) room.setAvatar(avatarId);
}

$("photo").addEventListener("change", () => {
  const file = $("photo").files[0];
  $("create").disabled = !file;
  if (!file) return;
  const img = $("photo-preview");
  img.onerror = () => {
    img.hidden = true; // e.g. HEIC: the hub reads it, this browser cannot show it
  };
  img.src = URL.createObjectURL(file);
  img.hidden = false;
  status(`Photo chosen: ${file.name}. Press “Make my avatar”.`);
});

$("create").addEventListener("click", async () => {
  const file = $("photo").files[0];
  if (!file) return;
  $("create").disabled = true;
  $("progress").hidden = false;
  showNotes([]);
  const bar = $("progress-bar");
  const text = $("progress-text");
  try {
    const avatar = await createAvatar(
      file,
      (fraction, words) => {
        bar.style.width = `${Math.round(Math.max(0.03, fraction) * 100)}%`;
        text.textContent = `${words} (${Math.round(fraction * 100)}%)`;
        status(`Making your avatar: ${words}…`);
      },
      { room: room.connected ? room.room : undefined },
    );
    text.textContent = "Done.";
    showNotes(avatar.warnings || []);
    await showMyAvatar(avatar.id, avatar.urls.glb);
    status("Your avatar is ready. Try the expression sliders, or join a room.", "ok");
  } catch (err) {
    showError(err);
    text.textContent = "";
    bar.style.width = "0";
  } finally {
    $("create").disabled = false;
  }
});

// ----------------------------------------------------------------------------- step 2: room

function renderPeers() {
  const list = $("peers");
  list.replaceChildren();
  if (!room.connected) {
    list.innerHTML = '<li class="empty">Not in a room yet.</li>';
    $("peer-count").textContent = "0";
    return;
  }
  const me = document.createElement("li");
  me.textContent = $("name").value.trim();
  const you = document.createElement("span");
  you.className = "you";
  you.textContent = " (you)";
  me.appendChild(you);
  list.appendChild(me);
  for (const peer of room.peers.values()) {
    const li = document.createElement("li");
    li.textContent = peer.name || `guest ${peer.participant}`;
    li.dataset.participant = peer.participant;
    if (!peer.avatar_url) {
      const note = document.createElement("span");
      note.className = "you";
      note.textContent = " (no avatar yet)";
      li.appendChild(note);
    }
    list.appendChild(li);
  }
  $("peer-count").textContent = String(room.peers.size + 1);
}

async function showPeer(peer) {
  const id = `p${peer.participant}`;
  viewer.ensureSlot(id, peer.name || `guest ${peer.participant}`);
  if (peer.avatar_url) {
    try {
      await viewer.loadAvatar(id, peer.avatar_url, peer.name);
    } catch (err) {
      status(`Could not load ${peer.name}'s avatar: ${err.message}`, "error");
    }
  }
}

room.addEventListener("joined", (e) => {
  showPeer(e.detail);
  renderPeers();
  status(`${e.detail.name || "Someone"} joined the room.`);
});
room.addEventListener("left", (e) => {
  viewer.removeSlot(`p${e.detail.participant}`);
  renderPeers();
});
room.addEventListener("avatar_ready", (e) => {
  if (e.detail.participant === room.participant) return;
  const peer = room.peers.get(e.detail.participant);
  if (peer) showPeer(peer);
  renderPeers();
});
room.addEventListener("frames", (e) => {
  for (const [pid, frame] of e.detail.frames) {
    viewer.setWeights(`p${pid}`, ARKIT_BLENDSHAPES, frame.weights);
    viewer.setHeadRotation(`p${pid}`, frame.rotation);
  }
});
room.addEventListener("error", (e) => status(`The room says: ${e.detail.message || e.detail.code}`, "error"));
room.addEventListener("close", (e) => {
  for (const id of [...viewer.slots.keys()]) if (id !== ME) viewer.removeSlot(id);
  renderPeers();
  $("join").hidden = false;
  $("leave").hidden = true;
  if (e.detail.code !== 1000) status(`You left the room: ${e.detail.words}.`, "error");
});

$("room-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const name = $("name").value.trim();
  const roomId = $("room").value.trim();
  if (!name || !roomId) return;
  $("join").disabled = true;
  status(`Joining room “${roomId}”…`);
  try {
    const welcome = await room.join(roomId, name, state.avatarId);
    viewer.setName(ME, name);
    for (const peer of room.peers.values()) showPeer(peer);
    renderPeers();
    $("join").hidden = true;
    $("leave").hidden = false;
    const others = room.peers.size;
    status(
      `You are in room “${roomId}” with ${others} other${others === 1 ? "" : "s"}.` +
        (state.avatarId ? "" : " Make an avatar so they can see your face."),
      "ok",
    );
    history.replaceState(null, "", `?room=${encodeURIComponent(roomId)}`);
    return welcome;
  } catch (err) {
    showError(new Error(`could not join the room: ${err.message}`));
  } finally {
    $("join").disabled = false;
  }
});

$("leave").addEventListener("click", () => {
  room.leave();
  for (const id of [...viewer.slots.keys()]) if (id !== ME) viewer.removeSlot(id);
  renderPeers();
  $("join").hidden = false;
  $("leave").hidden = true;
  status("You left the room.");
});

// ----------------------------------------------------------------------------- step 3: camera

function sendMyFrame() {
  if (!room.connected) return;
  room.sendFrame(encodeExpressionFrame(state.seq, Date.now() >>> 0, state.weights, state.quaternion, state.positionMm));
  state.seq = (state.seq + 1) & 0xffff;
}

$("camera").addEventListener("click", async () => {
  if (state.tracking) {
    tracker.stop();
    state.tracking = false;
    $("camera").textContent = "Start camera";
    $("calibrate").disabled = true;
    $("video").hidden = true;
    $("camera-info").textContent = "";
    status("Camera off.");
    return;
  }
  $("camera").disabled = true;
  status("Starting the camera and the face tracker (the first time takes a few seconds)…");
  try {
    if (!tracker) {
      tracker = new WebcamTracker($("video"), onTracked);
      tracker.addEventListener("noface", () => ($("camera-info").textContent = "No face in the picture: look at the camera."));
      tracker.addEventListener("calibrating", () => status("Hold a relaxed face and look at the camera for a moment…"));
      tracker.addEventListener("calibrated", () =>
        status("Camera on: your avatar follows your face." + (room.connected ? " Your class sees it too." : ""), "ok"),
      );
    }
    $("video").hidden = false;
    await tracker.start();
    state.tracking = true;
    $("camera").textContent = "Stop camera";
    $("calibrate").disabled = false;
  } catch (err) {
    $("video").hidden = true;
    showError(err);
  } finally {
    $("camera").disabled = false;
  }
});

$("calibrate").addEventListener("click", () => {
  if (tracker) tracker.calibrate(15);
});

function onTracked(result) {
  state.weights.set(result.weights);
  state.quaternion = result.pose.quaternion;
  state.positionMm = result.pose.positionMm;
  viewer.setWeights(ME, ARKIT_BLENDSHAPES, state.weights);
  viewer.setHeadRotation(ME, state.quaternion);
  sendMyFrame();
  if (++state.framesSinceSliderSync >= 6) {
    state.framesSinceSliderSync = 0;
    syncSliders();
    $("camera-info").textContent = `Tracking at ${tracker.fps.toFixed(0)} frames per second.`;
  }
}

// ----------------------------------------------------------------------------- start

async function start() {
  const params = new URLSearchParams(location.search);
  if (params.get("room")) $("room").value = params.get("room");
  try {
    $("name").value = localStorage.getItem("vrhub.name") || "";
  } catch {
    /* private mode */
  }
  $("name").addEventListener("change", () => {
    try {
      localStorage.setItem("vrhub.name", $("name").value.trim());
    } catch {
      /* private mode */
    }
  });
  let saved = null;
  const wanted = params.get("avatar");
  try {
    saved = wanted ? { id: wanted, glb: `/api/avatars/${wanted}.glb` } : JSON.parse(localStorage.getItem("vrhub.avatar") || "null");
  } catch {
    saved = null;
  }
  if (saved && saved.id) {
    const r = await fetch(`/api/avatars/${encodeURIComponent(saved.id)}`);
    if (r.ok && (await r.json()).status === "ready") {
      await showMyAvatar(saved.id, saved.glb);
      status("Welcome back: your avatar is loaded. Join a room when you are ready.", "ok");
      return;
    }
    if (wanted) status(`Avatar ${wanted} is not available: ${await errorMessage(r)}`, "error");
  }
  if (!wanted) status("Welcome! Start with step 1: choose a photo of your face.");
}

// For the console and for tests: the page's parts.
window.vrhub = { viewer, room, state, sendMyFrame, get tracker() { return tracker; } };

start().catch(showError);
