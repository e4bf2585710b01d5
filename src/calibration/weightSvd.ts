// The paper's initialisation, kept as baselines behind `compress --init svd|asvd`: the output-space principal
// directions of the projection weight itself, i.e. the left singular vectors of W (D × H) or, for ASVD, of W·S
// with S a diagonal scaling of the input channels. They are the eigenvectors of W S² Wᵀ, which needs only a
// D × D eigendecomposition. The mean of these baselines is the projection's bias (or 0), as an A·B factorisation
// of W reconstructs k^ = A B x + b.
import { type OrderedDirections, capturedVariance, orientRows } from './basis';
import { symmetricEigen } from './eigen';

/**
 * Directions for output channels [firstRow, firstRow + size) of `weight` (row-major [rows, inputs]), best first by
 * singular value; `inputScaleSquared` is S² (omit for plain SVD). `covariance` ([size, size], of the calibration
 * outputs of those channels) only measures how much variance each direction keeps.
 */
export function weightSvdDirections(
  weight: Float32Array, inputs: number, firstRow: number, size: number, covariance: Float64Array, inputScaleSquared?: Float64Array,
): OrderedDirections {
  const scaled = new Float64Array(size * inputs);
  for (let i = 0; i < size; i++) {
    const from = (firstRow + i) * inputs;
    for (let h = 0; h < inputs; h++) scaled[i * inputs + h] = weight[from + h]! * (inputScaleSquared ? inputScaleSquared[h]! : 1);
  }
  const gram = new Float64Array(size * size);
  for (let i = 0; i < size; i++) {
    for (let j = i; j < size; j++) {
      let s = 0;
      const a = i * inputs, b = (firstRow + j) * inputs;
      for (let h = 0; h < inputs; h++) s += scaled[a + h]! * weight[b + h]!;
      gram[i * size + j] = s;
      gram[j * size + i] = s;
    }
  }
  const { vectors } = symmetricEigen(gram, size);
  orientRows(vectors, size);
  return { size, rows: vectors, captured: capturedVariance(vectors, size, covariance) };
}
