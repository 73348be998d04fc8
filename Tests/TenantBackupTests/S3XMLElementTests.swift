import Testing

@testable import TenantBackup

@Suite struct S3XMLElementTests {
    @Test func readsAListObjectsV2Page() throws {
        let xml = """
            <?xml version="1.0" encoding="UTF-8"?>
            <ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
              <Name>bucket</Name><Prefix>backups/clinic/</Prefix><KeyCount>2</KeyCount>
              <IsTruncated>true</IsTruncated><NextContinuationToken>1ueGcx/Tr+=</NextContinuationToken>
              <Contents><Key>backups/clinic/a&amp;b &lt;c&gt;.sql</Key><Size>12</Size><ETag>&quot;abc&quot;</ETag></Contents>
              <Contents><Key>backups/clinic/Cl&#237;nica &#x1F6;</Key><Size>0</Size></Contents>
            </ListBucketResult>
            """
        let root = try S3XMLElement.parse(xml)
        #expect(root.name == "ListBucketResult")
        #expect(root["IsTruncated"] == "true")
        #expect(root["NextContinuationToken"] == "1ueGcx/Tr+=")
        let contents = root.children("Contents")
        #expect(contents.map { $0["Key"] } == ["backups/clinic/a&b <c>.sql", "backups/clinic/Clínica Ƕ"])
        #expect(contents.first?["ETag"] == "\"abc\"")
    }

    @Test func readsAnErrorWithCDATAAndSelfClosingElements() throws {
        let root = try S3XMLElement.parse("<Error><Code>NoSuchKey</Code><Message><![CDATA[a & b]]></Message><Empty/><Key a='1>2'>k</Key></Error>")
        #expect(root["Code"] == "NoSuchKey")
        #expect(root["Message"] == "a & b")
        #expect(root["Empty"] == "")
        #expect(root["Key"] == "k")
    }

    @Test(arguments: ["", "<a>", "<a></b>", "<a>&bogus;</a>", "<a/>trailing", "text"])
    func rejectsMalformedDocuments(text: String) {
        #expect(throws: S3XMLElement.SyntaxError.self) { try S3XMLElement.parse(text) }
    }
}

@Suite struct RetryPolicyTests {
    @Test func delaysGrowExponentiallyUpToTheCap() {
        let policy = RetryPolicy(maximumAttempts: 10, baseDelay: .milliseconds(100), maximumDelay: .seconds(1))
        #expect(policy.ceiling(forRetry: 1) == .milliseconds(100))
        #expect(policy.ceiling(forRetry: 2) == .milliseconds(200))
        #expect(policy.ceiling(forRetry: 4) == .milliseconds(800))
        #expect(policy.ceiling(forRetry: 5) == .seconds(1))
        #expect(policy.ceiling(forRetry: 60) == .seconds(1))
    }

    @Test func jitterStaysWithinTheCeiling() {
        let policy = RetryPolicy()
        var generator = SystemRandomNumberGenerator()
        for retry in 1...8 {
            for _ in 0..<50 {
                let delay = policy.delay(forRetry: retry, using: &generator)
                #expect(delay >= .zero && delay <= policy.ceiling(forRetry: retry))
            }
        }
    }

    @Test func transientErrorsAreTheRetryableOnes() {
        func error(_ status: Int, _ code: String?) -> S3Error {
            S3Error(operation: "Op", bucket: "b", key: "k", cause: .service(status: status, code: code, message: nil, requestId: nil))
        }
        #expect(error(503, "SlowDown").isTransient)
        #expect(error(500, "InternalError").isTransient)
        #expect(error(400, "RequestTimeout").isTransient)
        #expect(!error(403, "AccessDenied").isTransient)
        #expect(!error(403, "SignatureDoesNotMatch").isTransient)
        #expect(!error(404, "NoSuchKey").isTransient)
        #expect(S3Error(operation: "Op", bucket: "b", key: nil, cause: .transport("connection reset")).isTransient)
    }
}

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
