// The 3D view: one three.js scene holding "slots" (your avatar, and every classmate in a room).
// A slot shows a GLB avatar, or a placeholder head until the avatar is ready.

import * as THREE from "three";
import { OrbitControls } from "three/addons/controls/OrbitControls.js";
import { GLTFLoader } from "three/addons/loaders/GLTFLoader.js";
import { RoomEnvironment } from "three/addons/environments/RoomEnvironment.js";

const SPACING = 0.32; // metres between heads in a room
const SKIN = 0xd9a98c;
const PLACEHOLDER_EXTENT = { top: 0.1, bottom: -0.1 }; // the placeholder head, metres about its centre
const FRAME_MARGIN = 1.25;

function nameSprite(text) {
  const canvas = document.createElement("canvas");
  canvas.width = 512;
  canvas.height = 96;
  const ctx = canvas.getContext("2d");
  ctx.fillStyle = "rgba(20, 30, 50, 0.75)";
  const r = 40;
  ctx.beginPath();
  ctx.roundRect(4, 8, 504, 80, r);
  ctx.fill();
  ctx.fillStyle = "#ffffff";
  ctx.font = "bold 48px system-ui, sans-serif";
  ctx.textAlign = "center";
  ctx.textBaseline = "middle";
  ctx.fillText(text.slice(0, 24), 256, 50);
  const texture = new THREE.CanvasTexture(canvas);
  texture.colorSpace = THREE.SRGBColorSpace;
  const sprite = new THREE.Sprite(new THREE.SpriteMaterial({ map: texture, depthTest: false }));
  sprite.scale.set(0.16, 0.03, 1);
  sprite.renderOrder = 10;
  return sprite;
}

function placeholderHead() {
  const group = new THREE.Group();
  const skin = new THREE.MeshStandardMaterial({ color: SKIN, roughness: 0.65 });
  const head = new THREE.Mesh(new THREE.SphereGeometry(0.085, 48, 32), skin);
  head.scale.set(0.9, 1.12, 1.0);
  group.add(head);
  const white = new THREE.MeshStandardMaterial({ color: 0xf4f4f4, roughness: 0.3 });
  const dark = new THREE.MeshStandardMaterial({ color: 0x2a1d16, roughness: 0.3 });
  const eyes = [];
  for (const side of [-1, 1]) {
    const eye = new THREE.Mesh(new THREE.SphereGeometry(0.012, 24, 16), white);
    eye.position.set(side * 0.03, 0.012, 0.074);
    const pupil = new THREE.Mesh(new THREE.SphereGeometry(0.006, 16, 12), dark);
    pupil.position.set(0, 0, 0.009);
    eye.add(pupil);
    group.add(eye);
    eyes.push(eye);
  }
  const mouth = new THREE.Mesh(new THREE.SphereGeometry(0.02, 24, 12), dark);
  mouth.position.set(0, -0.045, 0.07);
  mouth.scale.set(1, 0.15, 0.4);
  group.add(mouth);
  group.userData = { mouth, eyes };
  return group;
}

export class Viewer {
  /** @param {HTMLCanvasElement} canvas */
  constructor(canvas) {
    this.canvas = canvas;
    this.renderer = new THREE.WebGLRenderer({ canvas, antialias: true, preserveDrawingBuffer: true });
    this.renderer.setPixelRatio(Math.min(window.devicePixelRatio || 1, 2));
    this.renderer.outputColorSpace = THREE.SRGBColorSpace;
    this.renderer.toneMapping = THREE.NeutralToneMapping;
    this.renderer.toneMappingExposure = 1.0;
    this.scene = new THREE.Scene();
    this.scene.background = new THREE.Color(0xe8eef5);
    const pmrem = new THREE.PMREMGenerator(this.renderer);
    this.scene.environment = pmrem.fromScene(new RoomEnvironment(), 0.04).texture;
    this.scene.environmentIntensity = 0.6;
    const key = new THREE.DirectionalLight(0xffffff, 1.6);
    key.position.set(0.6, 0.8, 1.2);
    const fill = new THREE.DirectionalLight(0xdde8ff, 0.5);
    fill.position.set(-0.8, 0.2, 0.6);
    const rim = new THREE.DirectionalLight(0xffffff, 0.6);
    rim.position.set(0, 0.5, -1);
    this.scene.add(key, fill, rim, new THREE.HemisphereLight(0xffffff, 0x8d7c6d, 0.4));
    this.camera = new THREE.PerspectiveCamera(30, 1, 0.01, 20);
    this.camera.position.set(0, 0.02, 0.75);
    this.controls = new OrbitControls(this.camera, canvas);
    this.controls.enableDamping = true;
    this.controls.target.set(0, 0, 0);
    this.loader = new GLTFLoader();
    /** @type {Map<string, {group: THREE.Group, content: THREE.Object3D, meshes: THREE.Mesh[], head: THREE.Object3D, rest: THREE.Quaternion, label: THREE.Sprite, placeholder: boolean, name: string}>} */
    this.slots = new Map();
    // Draw on demand, not every display frame: a page whose avatars are still (alone, or peers who
    // send nothing) costs no GPU or CPU time, which matters on school laptops and when several
    // pages share a machine. Everything that changes the picture calls requestRender().
    this._frame = 0;
    this.controls.addEventListener("change", () => this.requestRender());
    this.resize();
    new ResizeObserver(() => this.resize()).observe(canvas);
  }

  /** Draw once at the next display frame (several requests before it draw once). */
  requestRender() {
    if (this._frame) return;
    this._frame = requestAnimationFrame(() => {
      this._frame = 0;
      // true while the orbit controls' damping is still moving the camera: keep drawing until it rests
      const moving = this.controls.update();
      this.renderer.render(this.scene, this.camera);
      if (moving) this.requestRender();
    });
  }

  resize() {
    const w = this.canvas.clientWidth || 640;
    const h = this.canvas.clientHeight || 480;
    this.renderer.setSize(w, h, false);
    this.camera.aspect = w / h;
    this.camera.updateProjectionMatrix();
    this.requestRender();
  }

  /** Show a placeholder head for ``id`` (kept until ``loadAvatar``). */
  ensureSlot(id, name = "") {
    let slot = this.slots.get(id);
    if (slot) {
      if (name && name !== slot.name) this.setName(id, name);
      return slot;
    }
    const group = new THREE.Group();
    const content = placeholderHead();
    group.add(content);
    const label = nameSprite(name || "…");
    label.position.set(0, 0.15, 0);
    label.visible = Boolean(name);
    group.add(label);
    this.scene.add(group);
    // lastNames/lastWeights/lastRotation: the newest frame, re-applied when the GLB replaces the
    // placeholder (a peer that sends no further frame would otherwise show a neutral face)
    // top/bottom: the content's vertical extent about the slot origin (metres), for framing
    slot = {
      group, content, meshes: [], head: content, rest: new THREE.Quaternion(), label, placeholder: true, name,
      top: PLACEHOLDER_EXTENT.top, bottom: PLACEHOLDER_EXTENT.bottom,
      lastNames: null, lastWeights: null, lastRotation: null,
    };
    this.slots.set(id, slot);
    this.layout();
    return slot;
  }

  setName(id, name) {
    const slot = this.slots.get(id);
    if (!slot) return;
    const height = slot.label.position.y; // above the loaded head, or the placeholder's 0.15
    slot.group.remove(slot.label);
    slot.label = nameSprite(name);
    slot.label.position.set(0, height, 0);
    slot.group.add(slot.label);
    slot.name = name;
    this.layout(); // a label shown for the first time may need a wider frame
  }

  removeSlot(id) {
    const slot = this.slots.get(id);
    if (!slot) return;
    this.scene.remove(slot.group);
    this.slots.delete(id);
    this.layout();
  }

  /** Load a GLB into slot ``id``; resolves with the list of morph target names. */
  async loadAvatar(id, url, name = "") {
    const slot = this.ensureSlot(id, name);
    const gltf = await this.loader.loadAsync(url);
    const root = gltf.scene;
    const meshes = [];
    root.traverse((o) => {
      if (o.isMesh && o.morphTargetDictionary) meshes.push(o);
      if (o.isMesh) o.frustumCulled = false;
    });
    // Centre the head on the slot origin (GLB origin is between the ears at eye height).
    const box = new THREE.Box3().setFromObject(root);
    const centre = box.getCenter(new THREE.Vector3());
    root.position.sub(new THREE.Vector3(centre.x, centre.y, 0));
    let head = null;
    root.traverse((o) => {
      if (!head && o.isBone && /^head$/i.test(o.name)) head = o;
    });
    slot.group.remove(slot.content);
    slot.group.add(root);
    slot.content = root;
    slot.meshes = meshes;
    slot.head = head || root;
    slot.rest = slot.head.quaternion.clone();
    slot.placeholder = false;
    slot.top = box.max.y - centre.y;
    slot.bottom = box.min.y - centre.y;
    slot.label.position.set(0, slot.top + 0.03, 0);
    if (slot.lastWeights) this.setWeights(id, slot.lastNames, slot.lastWeights);
    if (slot.lastRotation) this.setHeadRotation(id, slot.lastRotation);
    this.layout();
    const names = meshes.length ? Object.keys(meshes[0].morphTargetDictionary) : [];
    names.sort((a, b) => meshes[0].morphTargetDictionary[a] - meshes[0].morphTargetDictionary[b]);
    return names;
  }

  /**
   * Arrange the slots in a row, "me" in the middle when alone, and frame them: the camera backs off
   * until the row fits across the canvas and the tallest head, from its lowest point to the top of
   * its name tag, fits from top to bottom (long hair on a wide canvas used to push the tag off the top).
   */
  layout() {
    const ids = [...this.slots.keys()];
    const n = ids.length;
    let top = PLACEHOLDER_EXTENT.top;
    let bottom = PLACEHOLDER_EXTENT.bottom;
    ids.forEach((id, i) => {
      const slot = this.slots.get(id);
      slot.group.position.set((i - (n - 1) / 2) * SPACING, 0, 0);
      top = Math.max(top, slot.top, slot.label.visible ? slot.label.position.y + slot.label.scale.y / 2 : -Infinity);
      bottom = Math.min(bottom, slot.bottom);
    });
    const tanHalf = Math.tan(THREE.MathUtils.degToRad(this.camera.fov / 2));
    const width = Math.max(1, n) * SPACING;
    const across = (width / 2 + 0.1) / tanHalf / this.camera.aspect;
    // FRAME_MARGIN: a head's front is nearer the camera than the target, so it looks bigger
    const upDown = ((top - bottom) / 2) * FRAME_MARGIN / tanHalf;
    const distance = Math.max(0.75, across, upDown);
    const dir = this.camera.position.clone().sub(this.controls.target).normalize();
    this.controls.target.set(0, (top + bottom) / 2, 0);
    this.camera.position.copy(dir.multiplyScalar(distance).add(this.controls.target));
    this.requestRender();
  }

  /** Set one morph target by name on every mesh of slot ``id``. */
  setWeight(id, name, value) {
    const slot = this.slots.get(id);
    if (!slot) return;
    for (const mesh of slot.meshes) {
      const k = mesh.morphTargetDictionary[name];
      if (k !== undefined) mesh.morphTargetInfluences[k] = value;
    }
    if (slot.placeholder && name === "jawOpen") slot.content.userData.mouth.scale.y = 0.15 + 1.2 * value;
    this.requestRender();
  }

  /** Apply 52 weights (ARKit order, ``names``) to slot ``id``. */
  setWeights(id, names, weights) {
    const slot = this.slots.get(id);
    if (!slot) return;
    slot.lastNames = names;
    slot.lastWeights = Array.from(weights);
    this.requestRender();
    if (slot.placeholder) {
      const k = names.indexOf("jawOpen");
      if (k >= 0) slot.content.userData.mouth.scale.y = 0.15 + 1.2 * weights[k];
      return;
    }
    for (const mesh of slot.meshes) {
      const dict = mesh.morphTargetDictionary;
      const infl = mesh.morphTargetInfluences;
      for (let i = 0; i < names.length; i++) {
        const k = dict[names[i]];
        if (k !== undefined) infl[k] = weights[i];
      }
    }
  }

  /** Head rotation as a quaternion [x, y, z, w] (viewer frame, +Z toward the viewer). */
  setHeadRotation(id, q) {
    const slot = this.slots.get(id);
    if (!slot) return;
    slot.lastRotation = Array.from(q);
    const rot = new THREE.Quaternion(q[0], q[1], q[2], q[3]).normalize();
    slot.head.quaternion.copy(slot.rest).multiply(rot);
    this.requestRender();
  }

  morphNames(id) {
    const slot = this.slots.get(id);
    if (!slot || !slot.meshes.length) return [];
    const dict = slot.meshes[0].morphTargetDictionary;
    return Object.keys(dict).sort((a, b) => dict[a] - dict[b]);
  }
}
