// The closed-form CSKV basis (docs/cskv.md): the minimiser of the layer-wise reconstruction loss ||K - K^||² over a
// rank-r map with a mean term is, by Eckart–Young, the mean plus the top-r eigenvectors of the covariance of the
// centred outputs. No gradient step; the eigenvalues are also exactly the variance each direction keeps.
import { type OrderedDirections, orientRows } from './basis';
import { symmetricEigen } from './eigen';

export function closedFormDirections(covariance: Float64Array, size: number): OrderedDirections {
  const { values, vectors } = symmetricEigen(covariance, size);
  orientRows(vectors, size);
  return { size, rows: vectors, captured: values };
}
