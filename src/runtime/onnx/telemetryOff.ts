// onnxruntime's Linux and macOS builds (1.30) carry Microsoft's 1DS telemetry client: on first use they write a
// device id and an event queue under ~/.cache/Microsoft/DeveloperTools/.onnxruntime/ and upload session events
// (model file name and hashes, execution providers, errors) to mobile.events.data.microsoft.com. The library reads
// ORT_DISABLE_TELEMETRY when it initialises, so it is set before onnxruntime-node is first loaded (ort.ts imports
// this module first); nothing of this product sends anything anywhere.
process.env.ORT_DISABLE_TELEMETRY = '1';

export {};
