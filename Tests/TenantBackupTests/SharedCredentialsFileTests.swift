import Testing

@testable import TenantBackup

@Suite struct SharedCredentialsFileTests {
    @Test func profilesAreRead() {
        let text = """
            [default]
            aws_access_key_id = AKDEFAULT
            aws_secret_access_key = secret/default
            # a comment
            [profile backup]
            aws_access_key_id=AKBACKUP
            aws_secret_access_key=secret+backup
            aws_session_token = token==
            """
        let profiles = SharedCredentialsFileProvider.parse(text)
        #expect(profiles["default"]?["aws_access_key_id"] == "AKDEFAULT")
        #expect(profiles["backup"]?["aws_secret_access_key"] == "secret+backup")
        #expect(profiles["backup"]?["aws_session_token"] == "token==")
    }

    @Test func theChainTakesTheFirstSourceWithCredentials() async throws {
        struct Empty: CredentialsProvider {
            var sourceDescription: String { "empty" }
            func credentials() async throws(CredentialsError) -> S3Credentials? { nil }
        }
        let second = S3Credentials(accessKeyId: "AK2", secretAccessKey: "s2")
        let chain = CredentialsChain([Empty(), StaticCredentialsProvider(second), StaticCredentialsProvider(S3Credentials(accessKeyId: "AK3", secretAccessKey: "s3"))])
        #expect(try await chain.credentials() == second)
        await #expect(throws: CredentialsError.noneFound(tried: ["empty", "empty"])) {
            try await CredentialsChain([Empty(), Empty()]).credentials()
        }
    }

    @Test func theStandardChainSkipsInstanceMetadataWhenDisabled() {
        let chain = CredentialsChain.standard(settings: S3Settings(), environment: ["AWS_EC2_METADATA_DISABLED": "true", "HOME": "/nonexistent"])
        #expect(!chain.providers.contains { $0 is InstanceMetadataCredentialsProvider })
    }
}
