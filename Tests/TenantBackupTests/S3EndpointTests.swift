import Foundation
import Testing

@testable import TenantBackup

@Suite struct S3EndpointTests {
    @Test func awsUsesVirtualHostedStyle() {
        let endpoint = S3Endpoint(settings: S3Settings(region: "eu-west-1"), bucket: "clinic-backups")
        #expect(endpoint.host == "clinic-backups.s3.eu-west-1.amazonaws.com")
        #expect(!endpoint.usesPathStyle)
        #expect(endpoint.hostHeader == "clinic-backups.s3.eu-west-1.amazonaws.com")
        #expect(endpoint.url(path: endpoint.path(key: "backups/a b/x"), query: [])
            == "https://clinic-backups.s3.eu-west-1.amazonaws.com/backups/a%20b/x")
    }

    @Test(arguments: ["http://127.0.0.1:9000", "http://localhost:9000", "http://[::1]:9000"])
    func ipAndLocalhostEndpointsUsePathStyle(url: String) {
        let endpoint = S3Endpoint(settings: S3Settings(endpoint: URL(string: url)!), bucket: "b")
        #expect(endpoint.usesPathStyle)
        #expect(endpoint.path(key: "k") == "/b/k")
        #expect(endpoint.hostHeader.hasSuffix(":9000"))
    }

    @Test(arguments: ["https://rgw.clinic.internal", "https://minio.example.org:9000", "http://ceph-rgw:7480"])
    func customHostNameEndpointsUsePathStyle(url: String) {
        let endpoint = S3Endpoint(settings: S3Settings(endpoint: URL(string: url)!), bucket: "b")
        #expect(endpoint.usesPathStyle)
        #expect(endpoint.path(key: "k") == "/b/k")
        #expect(!endpoint.host.hasPrefix("b."))
    }

    @Test func anExplicitAWSEndpointStaysVirtualHosted() {
        let endpoint = S3Endpoint(settings: S3Settings(endpoint: URL(string: "https://s3.eu-west-1.amazonaws.com")!), bucket: "b")
        #expect(!endpoint.usesPathStyle)
        #expect(endpoint.host == "b.s3.eu-west-1.amazonaws.com")
    }

    @Test func virtualHostedCanBeForcedOnACustomEndpoint() {
        let endpoint = S3Endpoint(settings: S3Settings(endpoint: URL(string: "https://rgw.clinic.internal")!, addressingStyle: .virtualHosted), bucket: "b")
        #expect(!endpoint.usesPathStyle)
        #expect(endpoint.hostHeader == "b.rgw.clinic.internal")
    }

    @Test func pathStyleCanBeForced() {
        let endpoint = S3Endpoint(settings: S3Settings(endpoint: URL(string: "https://minio.example.org")!, addressingStyle: .path), bucket: "b")
        #expect(endpoint.usesPathStyle)
        #expect(endpoint.hostHeader == "minio.example.org")
    }

    @Test func defaultPortsAreLeftOutOfTheHostHeader() {
        let endpoint = S3Endpoint(settings: S3Settings(endpoint: URL(string: "https://minio.example.org:443")!, addressingStyle: .path), bucket: "b")
        #expect(endpoint.hostHeader == "minio.example.org")
    }

    @Test func queryValuesAreEncodedSlashesIncluded() {
        let endpoint = S3Endpoint(settings: S3Settings(endpoint: URL(string: "http://127.0.0.1:9000")!), bucket: "b")
        #expect(endpoint.url(path: endpoint.path(key: nil), query: [("list-type", "2"), ("prefix", "backups/clinic/")])
            == "http://127.0.0.1:9000/b?list-type=2&prefix=backups%2Fclinic%2F")
    }
}
