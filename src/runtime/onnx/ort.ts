// onnxruntime-node, the one way into it: loaded only after its telemetry is switched off (telemetryOff.ts). No other
// module imports onnxruntime-node directly (test/runtime/telemetry.test.ts checks).
import './telemetryOff';

export * as ort from 'onnxruntime-node';
