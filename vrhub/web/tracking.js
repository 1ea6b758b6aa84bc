// Webcam face tracking in the browser: getUserMedia -> @mediapipe/face_mesh (478 landmarks) ->
// FaceSolver (the hub's own solver matrices) -> 52 ARKit weights + head pose, at most 30 per second.

import { FaceSolver } from "./solver.js";

const FACE_MESH_DIR = "/vendor/@mediapipe/face_mesh/";

function loadScript(src) {
  return new Promise((resolve, reject) => {
    if (document.querySelector(`script[src="${src}"]`)) return resolve();
    const script = document.createElement("script");
    script.src = src;
    script.crossOrigin = "anonymous";
    script.onload = () => resolve();
    script.onerror = () => reject(new Error(`could not load ${src}`));
    document.head.appendChild(script);
  });
}

export class WebcamTracker extends EventTarget {
  /**
   * @param {HTMLVideoElement} video where the camera picture is shown
   * @param {(result: {weights: Float64Array, pose: object}) => void} onResult called per solved frame
   */
  constructor(video, onResult, { maxFps = 30 } = {}) {
    super();
    this.video = video;
    this.onResult = onResult;
    this.minGapMs = 1000 / maxFps;
    this.running = false;
    this.solver = null;
    this.faceMesh = null;
    this.stream = null;
    this.lastLandmarks = null;
    this.calibrationFrames = null;
    this.calibrated = false;
    this.fps = 0;
    this.solved = 0;
  }

  async start() {
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      throw new Error("this browser cannot use a camera here (a camera needs https or localhost)");
    }
    if (!this.solver) this.solver = await FaceSolver.load();
    if (!this.faceMesh) {
      await loadScript(`${FACE_MESH_DIR}face_mesh.js`);
      const faceMesh = new window.FaceMesh({ locateFile: (file) => `${FACE_MESH_DIR}${file}` });
      faceMesh.setOptions({ maxNumFaces: 1, refineLandmarks: true, minDetectionConfidence: 0.5, minTrackingConfidence: 0.5 });
      faceMesh.onResults((results) => this.handle(results));
      await faceMesh.initialize();
      this.faceMesh = faceMesh;
    }
    try {
      this.stream = await navigator.mediaDevices.getUserMedia({ video: { width: 640, height: 480 }, audio: false });
    } catch (err) {
      throw new Error(`the camera could not be opened (${err.name}: ${err.message})`);
    }
    this.video.srcObject = this.stream;
    await this.video.play();
    this.running = true;
    if (!this.calibrated) this.calibrate(10);
    this.loop();
  }

  stop() {
    this.running = false;
    if (this.stream) this.stream.getTracks().forEach((t) => t.stop());
    this.stream = null;
    this.video.srcObject = null;
  }

  /**
   * The next ``count`` frames with a face (a relaxed face, looking at the camera) become the neutral:
   * without it the difference between this face and the template reads as expression. Runs by itself
   * when the camera starts; the avatar waits for it (about half a second).
   */
  calibrate(count = 15) {
    this.calibrationFrames = { count, frames: [] };
    this.dispatchEvent(new CustomEvent("calibrating"));
  }

  // A timer, not requestAnimationFrame: rAF stops in a hidden tab or a background window, and the
  // class should keep seeing the face while the student looks at another window.
  async loop() {
    let frames = 0;
    let since = performance.now();
    while (this.running) {
      const started = performance.now();
      if (this.video.readyState >= 2) {
        try {
          await this.faceMesh.send({ image: this.video });
        } catch (err) {
          this.dispatchEvent(new CustomEvent("error", { detail: err }));
        }
        frames += 1;
        const now = performance.now();
        if (now - since > 1000) {
          this.fps = (frames * 1000) / (now - since);
          frames = 0;
          since = now;
        }
      }
      const wait = Math.max(0, this.minGapMs - (performance.now() - started));
      await new Promise((r) => setTimeout(r, wait));
    }
  }

  handle(results) {
    const faces = results.multiFaceLandmarks;
    if (!faces || !faces.length) {
      this.dispatchEvent(new CustomEvent("noface"));
      return;
    }
    const landmarks = faces[0];
    const width = this.video.videoWidth || 640;
    const height = this.video.videoHeight || 480;
    if (this.calibrationFrames) {
      this.calibrationFrames.frames.push(landmarks.map((p) => [p.x, p.y, p.z]));
      if (this.calibrationFrames.frames.length < this.calibrationFrames.count) return;
      this.solver.calibrateNeutral(this.calibrationFrames.frames, width, height, true);
      this.calibrationFrames = null;
      this.calibrated = true;
      this.dispatchEvent(new CustomEvent("calibrated"));
    }
    this.lastLandmarks = landmarks;
    this.solved += 1;
    this.onResult(this.solver.solve(landmarks, width, height, true));
  }
}
