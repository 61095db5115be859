package kraft.interop;

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.apache.kafka.clients.consumer.CloseOptions;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.PartitionInfo;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;

/**
 * consume --topic T [--partitions 0,1] [--expect N] [--offset O]
 *
 * Reads in assign mode (no group, no commits) from the beginning of each partition, or from
 * offset O of each, until N records came or --timeout-ms passed; without --partitions it reads
 * every partition of the topic. Prints each record as
 *   {"partition", "offset", "key" (UTF-8 text or null), "value" (base64 or null),
 *    "headers": [[key, UTF-8 text or null], ...], "timestamp", "timestamp_type", "leader_epoch"}
 * and then {"summary": true, "received", "expected", "timed_out"}. With --expect, at most N records
 * are printed and fewer is exit code 3; without it, the run ends at the timeout with exit code 0.
 */
final class ConsumeCommand {
    private ConsumeCommand() {}

    private static final Duration CLOSE_TIMEOUT = Duration.ofSeconds(5);
    private static final long POLL_MS_MAX = 200;

    static int run(String[] args) throws Exception {
        Options options = Client.parse(args, Set.of("--topic", "--partitions", "--expect", "--offset"), Set.of());
        String topic = options.required("--topic");
        int expected = options.intValue("--expect", -1);
        int timeoutMs = AdminCommands.timeoutMs(options);
        long deadlineNanos = System.nanoTime() + timeoutMs * 1_000_000L;
        KafkaConsumer<byte[], byte[]> consumer = new KafkaConsumer<>(consumerProperties(options, timeoutMs));
        int received = 0;
        try {
            List<TopicPartition> partitions = partitions(consumer, topic, options.get("--partitions", null), timeoutMs);
            consumer.assign(partitions);
            if (options.has("--offset")) {
                long offset = Long.parseLong(options.get("--offset", "0"));
                for (TopicPartition partition : partitions) consumer.seek(partition, offset);
            } else {
                consumer.seekToBeginning(partitions);
            }
            while (expected < 0 || received < expected) {
                long remainingMs = (deadlineNanos - System.nanoTime()) / 1_000_000;
                if (remainingMs <= 0) break;
                for (ConsumerRecord<byte[], byte[]> record : consumer.poll(Duration.ofMillis(Math.min(POLL_MS_MAX, remainingMs)))) {
                    if (expected >= 0 && received >= expected) break;
                    Json.print(recordObject(record));
                    received++;
                }
            }
        } finally {
            consumer.close(CloseOptions.timeout(CLOSE_TIMEOUT));
        }
        boolean timedOut = expected >= 0 && received < expected;
        Json.print(Json.obj().put("summary", true).put("received", received)
                .put("expected", expected < 0 ? null : expected).put("timed_out", timedOut));
        return timedOut ? Client.EXIT_TIMEOUT : Client.EXIT_OK;
    }

    private static List<TopicPartition> partitions(KafkaConsumer<byte[], byte[]> consumer, String topic,
                                                   String list, int timeoutMs) {
        List<TopicPartition> partitions = new ArrayList<>();
        if (list != null) {
            for (String number : list.split(",")) {
                try {
                    partitions.add(new TopicPartition(topic, Integer.parseInt(number.trim())));
                } catch (NumberFormatException e) {
                    throw new Options.UsageError("--partitions expects numbers like 0,1, got " + list);
                }
            }
            return partitions;
        }
        List<PartitionInfo> infos = consumer.partitionsFor(topic, Duration.ofMillis(timeoutMs));
        if (infos == null || infos.isEmpty()) {
            throw new org.apache.kafka.common.errors.UnknownTopicOrPartitionException("no partitions for " + topic);
        }
        for (PartitionInfo info : infos) partitions.add(new TopicPartition(topic, info.partition()));
        return partitions;
    }

    private static Json.Obj recordObject(ConsumerRecord<byte[], byte[]> record) {
        List<Object> headers = new ArrayList<>();
        for (Header header : record.headers()) {
            headers.add(java.util.Arrays.asList(header.key(), text(header.value())));
        }
        return Json.obj()
                .put("partition", record.partition())
                .put("offset", record.offset())
                .put("key", text(record.key()))
                .put("value", Json.base64(record.value()))
                .put("headers", headers)
                .put("timestamp", record.timestamp())
                .put("timestamp_type", record.timestampType().name)
                .put("leader_epoch", record.leaderEpoch().orElse(null));
    }

    private static String text(byte[] bytes) {
        return bytes == null ? null : new String(bytes, StandardCharsets.UTF_8);
    }

    private static java.util.Properties consumerProperties(Options options, int timeoutMs) {
        Map<String, Object> defaults = new HashMap<>();
        defaults.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, options.required("--bootstrap"));
        defaults.put(ConsumerConfig.CLIENT_ID_CONFIG, "kraft-interop-consumer");
        defaults.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        defaults.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        defaults.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, false);
        defaults.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        defaults.put(ConsumerConfig.REQUEST_TIMEOUT_MS_CONFIG, Math.min(timeoutMs, 30_000));
        defaults.put(ConsumerConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, timeoutMs);
        return options.clientProperties(defaults);
    }
}
