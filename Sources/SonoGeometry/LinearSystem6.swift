/// The 6×6 linear systems of differential kinematics (J Jᵀ + λ² I) y = e.
public enum LinearSystem6 {
    /// Solves A x = b for a 6×6 row-major A by Gaussian elimination with partial pivoting;
    /// nil when A is singular. Inline storage: no allocation.
    public static func solve(_ matrix: InlineArray<36, Double>, _ rhs: InlineArray<6, Double>) -> InlineArray<6, Double>? {
        var a = matrix, b = rhs
        for column in 0..<6 {
            var pivot = column
            for row in (column + 1)..<6 where abs(a[row * 6 + column]) > abs(a[pivot * 6 + column]) { pivot = row }
            guard abs(a[pivot * 6 + column]) > 1e-12 else { return nil }
            if pivot != column {
                for k in 0..<6 { a.swapAt(pivot * 6 + k, column * 6 + k) }
                b.swapAt(pivot, column)
            }
            for row in (column + 1)..<6 {
                let factor = a[row * 6 + column] / a[column * 6 + column]
                for k in column..<6 { a[row * 6 + k] -= factor * a[column * 6 + k] }
                b[row] -= factor * b[column]
            }
        }
        var x = InlineArray<6, Double>(repeating: 0)
        for row in stride(from: 5, through: 0, by: -1) {
            var sum = b[row]
            for k in (row + 1)..<6 { sum -= a[row * 6 + k] * x[k] }
            x[row] = sum / a[row * 6 + row]
        }
        return x
    }
}
