import { OnnxEngine } from '../../src/runtime/backends/onnxEngine';
import { runEngineSuite } from './engineSuite';

runEngineSuite('onnx', (dir, options) => OnnxEngine.load(dir, options), {
  tolerance: 1e-4,
  quantisedTolerance: { 8: 1e-2, 4: 3e-2, 2: 1e-1 },
});
