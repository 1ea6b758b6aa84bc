// Photo upload and build progress: POST /api/avatars, then server-sent events until done or failed.

/** Words for an error body {"error": {"code", "message"}} or a failed response. */
export async function errorMessage(response) {
  try {
    const body = await response.json();
    if (body && body.error && body.error.message) return body.error.message;
  } catch {
    /* not JSON */
  }
  return `the hub answered ${response.status} ${response.statusText}`;
}

const STAGE_WORDS = {
  detect: "finding your face",
  segment: "separating face, hair and background",
  reconstruct: "building your 3D head",
  hair_attributes: "looking at your hair",
  hair_model: "making your hair",
  rig: "adding expressions and bones",
  export: "packing the 3D file",
};

export function describeStage(stage) {
  return STAGE_WORDS[stage] || (stage ? `working (${stage})` : "waiting for a free worker");
}

/**
 * Upload a photo and wait for the avatar.
 * @param {File|Blob} file
 * @param {(fraction: number, words: string) => void} onProgress
 * @param {{room?: string}} options
 * @returns {Promise<object>} the avatar JSON (status "ready") with urls.glb
 */
export async function createAvatar(file, onProgress = () => {}, options = {}) {
  const form = new FormData();
  form.append("photo", file, file.name || "photo.jpg");
  if (options.room) form.append("room", options.room);
  onProgress(0, "sending your photo");
  const response = await fetch("/api/avatars", { method: "POST", body: form });
  if (!response.ok) throw new Error(await errorMessage(response));
  const created = await response.json();
  onProgress(0.02, "photo received, waiting to start");
  return await followAvatar(created, onProgress);
}

/** Follow GET /api/avatars/{id}/events until the avatar is ready (resolve) or failed (reject). */
export function followAvatar(created, onProgress = () => {}) {
  const eventsUrl = (created.urls && created.urls.events) || `/api/avatars/${created.id}/events`;
  return new Promise((resolve, reject) => {
    const source = new EventSource(eventsUrl);
    let finished = false;
    const finish = (fn, value) => {
      if (finished) return;
      finished = true;
      source.close();
      fn(value);
    };
    source.addEventListener("progress", (e) => {
      const data = JSON.parse(e.data);
      onProgress(Number(data.fraction) || 0, describeStage(data.stage));
    });
    source.addEventListener("done", (e) => {
      const avatar = JSON.parse(e.data);
      onProgress(1, "your avatar is ready");
      finish(resolve, avatar);
    });
    source.addEventListener("failed", (e) => {
      let message = "the avatar could not be built";
      try {
        const data = JSON.parse(e.data);
        if (data.error && data.error.message) message = data.error.message;
        else if (data.error && data.error.code) message = `the avatar could not be built (${data.error.code})`;
      } catch {
        /* keep the generic words */
      }
      finish(reject, new Error(message));
    });
    source.onerror = async () => {
      // The stream dropped (hub restarted, proxy timeout): ask once where the avatar stands.
      if (finished) return;
      try {
        const r = await fetch(`/api/avatars/${created.id}`);
        if (!r.ok) return finish(reject, new Error(await errorMessage(r)));
        const avatar = await r.json();
        if (avatar.status === "ready") finish(resolve, avatar);
        else if (avatar.status === "failed") finish(reject, new Error((avatar.error && avatar.error.message) || "the avatar could not be built"));
        // otherwise EventSource reconnects by itself
      } catch (err) {
        finish(reject, new Error(`lost contact with the hub: ${err.message}`));
      }
    };
  });
}
