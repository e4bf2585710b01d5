import { OnnxEngine } from '../../src/runtime/backends/onnxEngine';
import { runEngineSuite } from './engineSuite';

// The f32 path against the float64 reference; 8/4-bit weights have their own bounds (blockWeights.test.ts).
runEngineSuite('onnx', (dir, options) => OnnxEngine.load(dir, { ...options, weights: 'f32' }), {
  tolerance: 1e-4,
  quantisedTolerance: { 8: 1e-2, 4: 3e-2, 2: 1e-1 },
});
