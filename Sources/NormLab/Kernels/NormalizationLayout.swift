/// A normalizer's input viewed as `[N, C, S]`, S the number of spatial positions (1 for
/// `[N, C]`). A normalizer makes one by checking a shape (`Normalizers/Normalizer.swift`).
struct NormalizationLayout: Equatable {
    let batch: Int
    let channels: Int
    let spatial: Int

    var count: Int { batch * channels * spatial }
}
