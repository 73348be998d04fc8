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
