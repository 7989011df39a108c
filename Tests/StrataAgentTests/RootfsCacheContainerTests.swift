import Foundation
import Logging
import Testing

@testable import StrataAgent

@Suite(.enabled(if: ExecutorFixture.canRunContainers, "needs root, cgroups, runc and busybox"), .timeLimit(.minutes(2)))
struct RootfsCacheContainerTests {
    @Test func aTaskRunsFromAnUnpackedBusyboxImageWhoseCachedRootFilesystemStaysUnchanged() async throws {
        try await withExecutorFixture { fixture in
            let scratch = try LayerScratch()
            // A base layer (tar+gzip) made by tar from Debian's static busybox, and a top layer
            // (tar+zstd) that adds a file and whites out an applet.
            let base = TestLayer(
                blob: try scratch.shell(
                    """
                    mkdir -p base/bin && cp /bin/busybox base/bin/busybox \
                    && for applet in sh echo cat touch; do ln -s busybox base/bin/$applet; done \
                    && tar -C base -cf - . | gzip -c
                    """),
                mediaType: TestLayer.gzipType)
            var top = TestTar()
            top.file("etc/message", "from the top layer\n")
            top.file("bin/.wh.cat", "")
            let topLayer = TestLayer(blob: try TestLayer.compressed(top.archive, with: "zstd -c -q", in: scratch), mediaType: TestLayer.zstdType)
            let layers = CountingLayerSource([base, topLayer])
            var logger = Logger(label: "strata.rootfs-cache.test")
            logger.logLevel = .debug
            let cache = try RootfsCache(directory: "\(fixture.directory)/images", capacityBytes: 1 << 30, logger: logger)
            let lease = try await cache.acquire([base.layer, topLayer.layer], from: layers.source)
            let container = ContainerSpec(rootFilesystem: lease.rootFilesystem, readOnly: true)

            let sandbox = try fixture.sandbox()
            let echo = try await fixture.launch("from-image", ["busybox", "echo", "hi"], sandbox: sandbox, container: container)
            let outcome = await echo.wait()
            #expect(outcome.state == .finished, "\(outcome.message); stderr: \(fixture.read("\(sandbox)/stderr"))")
            #expect(fixture.read("\(sandbox)/stdout") == "hi\n")

            let other = try fixture.sandbox("other")
            let script = """
                read -r message < /etc/message; echo $message; echo scratch > /tmp/s && busybox cat /tmp/s; \
                touch /written 2>/dev/null || echo read-only; [ -e /bin/cat ] || echo no-cat
                """
            let checks = try await fixture.launch("from-image-checks", ["sh", "-c", script], sandbox: other, container: container)
            #expect(await checks.wait().state == .finished, "stderr: \(fixture.read("\(other)/stderr"))")
            #expect(fixture.read("\(other)/stdout") == "from the top layer\nscratch\nread-only\nno-cat\n", "stderr: \(fixture.read("\(other)/stderr"))")
            await cache.release(lease)

            // runc wrote nothing in the shared root filesystem: the next task's check passes and
            // no layer is read again.
            let again = try await cache.acquire([base.layer, topLayer.layer], from: layers.source)
            #expect(layers.totalReads == 2)
            #expect(await cache.verifyContents(of: again.key) == nil)
            await cache.release(again)
        }
    }
}
