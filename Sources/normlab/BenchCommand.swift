import Foundation
import NormLab

/// `normlab bench kernels`: times the normalizers.
enum BenchCommand {
    static func run(_ arguments: [String]) throws -> Int32 {
        throw UsageError("not implemented")
    }
}
