import Testing

@testable import TenantBackup

/// What an `--after-restore` file may hold: SQL statements only, inside the restore's own transaction.
@Suite struct AfterRestoreScriptTests {
    @Test func plainStatementsPass() {
        #expect(BackupAccess.afterRestoreProblem("DELETE FROM public.tenants_clinic WHERE schema_name <> 'bienestar';\n-- a comment\n") == nil)
        #expect(BackupAccess.afterRestoreProblem("UPDATE t SET note = 'commit later';\nDELETE FROM ends;") == nil)
    }

    @Test(arguments: [
        "COMMIT;", "  rollback;", "END;", "BEGIN;", "start transaction;", "SAVEPOINT a;", "ABORT;", "PREPARE TRANSACTION 'x';",
        "DELETE FROM t;\nCOMMIT;\nSELECT 1/0;", "DELETE FROM t; COMMIT;", "DELETE FROM t; commit\n;",
    ])
    func transactionControlIsRefused(sql: String) {
        #expect(BackupAccess.afterRestoreProblem(sql)?.contains("transaction control") == true, "\(sql)")
    }

    @Test(arguments: ["\\q", "\\! touch /tmp/x", "  \\connect other", "DELETE FROM t;\n\\i /etc/passwd", "DELETE FROM t; \\! touch /tmp/x", "SELECT 1 \\gexec"])
    func psqlMetaCommandsAreRefused(sql: String) {
        #expect(BackupAccess.afterRestoreProblem(sql)?.contains("meta-command") == true, "\(sql)")
    }
}
