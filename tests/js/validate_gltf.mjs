// Validate glTF/GLB/VRM files with the Khronos glTF validator; prints one JSON report per file.
// usage: node tests/js/validate_gltf.mjs FILE...
import { readFile } from "node:fs/promises";
import validator from "gltf-validator";

const reports = {};
for (const path of process.argv.slice(2)) {
  const data = new Uint8Array(await readFile(path));
  const report = await validator.validateBytes(data, { uri: path, maxIssues: 200 });
  reports[path] = {
    numErrors: report.issues.numErrors,
    numWarnings: report.issues.numWarnings,
    numInfos: report.issues.numInfos,
    messages: report.issues.messages.map((m) => ({ code: m.code, message: m.message, severity: m.severity, pointer: m.pointer })),
    info: report.info,
  };
}
process.stdout.write(JSON.stringify(reports));
