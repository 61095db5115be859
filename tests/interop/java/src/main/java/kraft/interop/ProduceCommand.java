package kraft.interop;

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.HashMap;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.concurrent.atomic.AtomicReferenceArray;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.serialization.ByteArraySerializer;

/**
 * produce --topic T --count N [--compression none|gzip|snappy|lz4|zstd] [--key-prefix P]
 *         [--headers] [--partition P] [--first-index I] [--value-size S] [--acks all|1|0] [--quiet]
 *         [--rate R]
 *
 * Record i (from --first-index) has key P+i ("k-i" by default) and value "v-i", or, with
 * --value-size S, S bytes where byte j is (i * 31 + j) mod 256; with --headers it carries header
 * "h" = "i". The producer keeps Kafka's defaults (idempotence on, acks=all) unless told otherwise.
 * With --rate R it sends at most R records per second, so a run can span a test's faults.
 *
 * Prints one line per record in index order, {"index", "partition", "offset", "timestamp"} or
 * {"index", "error", ...} (error "NotSent" for records after one that failed at once), then {"summary": true, "acked", "failed", "elapsed_ms"}. Exits 0 only
 * when every record was acknowledged.
 */
final class ProduceCommand {
    private ProduceCommand() {}

    private static final Duration CLOSE_TIMEOUT = Duration.ofSeconds(5);

    /** One send's outcome, filled in by the producer's I/O thread. */
    private record Outcome(RecordMetadata metadata, Exception error) {}

    static int run(String[] args) throws Exception {
        Options options = Client.parse(args,
                Set.of("--topic", "--count", "--compression", "--key-prefix", "--partition",
                        "--first-index", "--value-size", "--acks", "--rate"),
                Set.of("--headers", "--quiet"));
        String topic = options.required("--topic");
        int count = options.intValue("--count", 1);
        int firstIndex = options.intValue("--first-index", 0);
        Integer partition = options.has("--partition") ? options.intValue("--partition", 0) : null;
        int rate = options.intValue("--rate", 0);
        AtomicReferenceArray<Outcome> outcomes = new AtomicReferenceArray<>(count);
        long startNanos = System.nanoTime();
        KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(producerProperties(options));
        try {
            for (int n = 0; n < count; n++) {
                if (rate > 0) {
                    long dueNanos = startNanos + n * 1_000_000_000L / rate;
                    long waitNanos = dueNanos - System.nanoTime();
                    if (waitNanos > 0) Thread.sleep(waitNanos / 1_000_000, (int) (waitNanos % 1_000_000));
                }
                int slot = n;
                ProducerRecord<byte[], byte[]> record = record(options, topic, partition, firstIndex + n);
                producer.send(record, (metadata, error) -> outcomes.set(slot, new Outcome(metadata, error)));
                // A send that failed at once (e.g. no metadata within max.block.ms) would fail the
                // same way for every later record, each after another full wait: stop here.
                Outcome outcome = outcomes.get(slot);
                if (outcome != null && outcome.error() != null) break;
            }
            producer.flush();
        } finally {
            producer.close(CLOSE_TIMEOUT);
        }
        return report(outcomes, firstIndex, options.flag("--quiet"), startNanos);
    }

    static ProducerRecord<byte[], byte[]> record(Options options, String topic, Integer partition, int index) {
        byte[] key = (options.get("--key-prefix", "k-") + index).getBytes(StandardCharsets.UTF_8);
        ProducerRecord<byte[], byte[]> record =
                new ProducerRecord<>(topic, partition, key, value(options.intValue("--value-size", -1), index));
        if (options.flag("--headers")) {
            record.headers().add("h", Integer.toString(index).getBytes(StandardCharsets.UTF_8));
        }
        return record;
    }

    static byte[] value(int size, int index) {
        if (size < 0) return ("v-" + index).getBytes(StandardCharsets.UTF_8);
        byte[] bytes = new byte[size];
        for (int j = 0; j < size; j++) bytes[j] = (byte) (index * 31 + j);
        return bytes;
    }

    private static int report(AtomicReferenceArray<Outcome> outcomes, int firstIndex, boolean quiet,
                              long startNanos) {
        int acked = 0;
        int failed = 0;
        boolean allFailuresAreTimeouts = true;
        for (int n = 0; n < outcomes.length(); n++) {
            Outcome outcome = outcomes.get(n);
            Json.Obj line;
            if (outcome != null && outcome.error() == null) {
                acked++;
                RecordMetadata metadata = outcome.metadata();
                line = Json.obj().put("index", firstIndex + n).put("partition", metadata.partition())
                        .put("offset", metadata.offset()).put("timestamp", metadata.timestamp());
            } else if (outcome == null) {
                failed++;
                line = Json.obj().put("index", firstIndex + n).put("error", "NotSent")
                        .put("message", "not sent: an earlier send failed at once").put("retriable", false);
            } else {
                failed++;
                Throwable error = Client.unwrap(outcome.error());
                allFailuresAreTimeouts &= Client.isTimeout(error);
                line = Client.errorObject(error).put("index", firstIndex + n);
            }
            if (!quiet) Json.print(line);
        }
        Json.print(Json.obj().put("summary", true).put("acked", acked).put("failed", failed)
                .put("elapsed_ms", (System.nanoTime() - startNanos) / 1_000_000));
        if (failed == 0) return Client.EXIT_OK;
        return allFailuresAreTimeouts ? Client.EXIT_TIMEOUT : Client.EXIT_FAILED;
    }

    /** Kafka's producer defaults, bounded by --timeout-ms, with the caller's --property on top. */
    private static Properties producerProperties(Options options) {
        int timeoutMs = AdminCommands.timeoutMs(options);
        int requestTimeoutMs = Math.min(timeoutMs, 30_000);
        Map<String, Object> defaults = new HashMap<>();
        defaults.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, options.required("--bootstrap"));
        defaults.put(ProducerConfig.CLIENT_ID_CONFIG, "kraft-interop-producer");
        defaults.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
        defaults.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
        defaults.put(ProducerConfig.COMPRESSION_TYPE_CONFIG, options.get("--compression", "none"));
        defaults.put(ProducerConfig.MAX_BLOCK_MS_CONFIG, timeoutMs);
        defaults.put(ProducerConfig.REQUEST_TIMEOUT_MS_CONFIG, requestTimeoutMs);
        // delivery.timeout.ms must be at least linger.ms (5 by default) + request.timeout.ms.
        defaults.put(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, Math.max(timeoutMs, requestTimeoutMs + 1_000));
        String acks = options.get("--acks", null);
        if (acks != null) {
            defaults.put(ProducerConfig.ACKS_CONFIG, acks);
            // Idempotence requires acks=all; a weaker acks is a request to turn it off.
            if (!acks.equals("all") && !acks.equals("-1")) {
                defaults.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, false);
            }
        }
        return options.clientProperties(defaults);
    }
}
