import Foundation

extension S3Client {
    /// A URL anyone can GET the object with until it expires (1 s … 7 days, and never beyond temporary
    /// credentials). The URL carries a signature: treat it as a secret, never log it.
    public func presignedGetURL(key: String, expiresIn seconds: Int) async throws(S3Error) -> String {
        let credentials = try await currentCredentials("PresignGetObject", key: key)
        let path = endpoint.path(key: key)
        do throws(PresignError) {
            let query = try SigV4Signer(credentials: credentials, region: region).presignedQuery(
                for: .init(method: "GET", host: endpoint.hostHeader, path: path), expires: seconds, date: signingDate)
            return endpoint.url(path: path, query: query)
        } catch {
            throw S3Error(operation: "PresignGetObject", bucket: bucket, key: key, cause: .invalidRequest(error.description))
        }
    }
}
