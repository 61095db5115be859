package kraft.interop;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Properties;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.Config;
import org.apache.kafka.clients.admin.ConfigEntry;
import org.apache.kafka.clients.admin.CreateTopicsOptions;
import org.apache.kafka.clients.admin.CreateTopicsResult;
import org.apache.kafka.clients.admin.DescribeClusterResult;
import org.apache.kafka.clients.admin.ListTopicsOptions;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.common.KafkaFuture;
import org.apache.kafka.common.Node;
import org.apache.kafka.common.TopicPartitionInfo;
import org.apache.kafka.common.config.ConfigResource;

/** The AdminClient subcommands: create-topic, delete-topic, describe, list-topics. */
final class AdminCommands {
    private AdminCommands() {}

    private static final Duration CLOSE_TIMEOUT = Duration.ofSeconds(5);
    private static final int AWAIT_GRACE_MS = 2_000;

    /** create-topic --topic T [--partitions N] [--replication-factor R] [--config k=v]... [--validate-only] */
    static int createTopic(String[] args) throws Exception {
        Options options = Client.parse(args,
                Set.of("--topic", "--partitions", "--replication-factor", "--config"),
                Set.of("--validate-only"));
        String topic = options.required("--topic");
        Optional<Integer> partitions = options.has("--partitions")
                ? Optional.of(options.intValue("--partitions", -1)) : Optional.empty();
        Optional<Short> replication = options.has("--replication-factor")
                ? Optional.of((short) options.intValue("--replication-factor", -1)) : Optional.empty();
        NewTopic newTopic = new NewTopic(topic, partitions, replication).configs(options.pairs("--config"));
        return withAdmin(options, (admin, timeoutMs) -> {
            CreateTopicsOptions createOptions = new CreateTopicsOptions()
                    .validateOnly(options.flag("--validate-only")).timeoutMs(timeoutMs);
            CreateTopicsResult result = admin.createTopics(List.of(newTopic), createOptions);
            await(result.all(), timeoutMs);
            Json.print(Json.obj()
                    .put("ok", true)
                    .put("topic", topic)
                    .put("topic_id", String.valueOf(result.topicId(topic).get()))
                    .put("partitions", result.numPartitions(topic).get())
                    .put("replication_factor", result.replicationFactor(topic).get()));
            return Client.EXIT_OK;
        });
    }

    /** delete-topic --topic T */
    static int deleteTopic(String[] args) throws Exception {
        Options options = Client.parse(args, Set.of("--topic"), Set.of());
        String topic = options.required("--topic");
        return withAdmin(options, (admin, timeoutMs) -> {
            await(admin.deleteTopics(List.of(topic)).all(), timeoutMs);
            Json.print(Json.obj().put("ok", true).put("topic", topic));
            return Client.EXIT_OK;
        });
    }

    /** list-topics [--internal] */
    static int listTopics(String[] args) throws Exception {
        Options options = Client.parse(args, Set.of(), Set.of("--internal"));
        ListTopicsOptions listOptions = new ListTopicsOptions().listInternal(options.flag("--internal"));
        return withAdmin(options, (admin, timeoutMs) -> {
            Set<String> names = await(admin.listTopics(listOptions).names(), timeoutMs);
            Json.print(Json.obj().put("topics", new ArrayList<>(new TreeSet<>(names))));
            return Client.EXIT_OK;
        });
    }

    /** describe [--topic T]: the cluster, and the topic's partitions and configs when named. */
    static int describe(String[] args) throws Exception {
        Options options = Client.parse(args, Set.of("--topic"), Set.of());
        String topic = options.get("--topic", null);
        return withAdmin(options, (admin, timeoutMs) -> {
            Json.Obj out = Json.obj().put("cluster", describeCluster(admin, timeoutMs));
            if (topic != null) {
                TopicDescription description =
                        await(admin.describeTopics(List.of(topic)).allTopicNames(), timeoutMs).get(topic);
                out.put("topic", topicObject(description));
                ConfigResource resource = new ConfigResource(ConfigResource.Type.TOPIC, topic);
                Config config = await(admin.describeConfigs(List.of(resource)).all(), timeoutMs).get(resource);
                out.put("configs", configObject(config));
            }
            Json.print(out);
            return Client.EXIT_OK;
        });
    }

    private static Json.Obj describeCluster(Admin admin, int timeoutMs) throws Exception {
        DescribeClusterResult cluster = admin.describeCluster();
        List<Object> nodes = new ArrayList<>();
        for (Node node : await(cluster.nodes(), timeoutMs)) {
            nodes.add(nodeObject(node));
        }
        Node controller = await(cluster.controller(), timeoutMs);
        return Json.obj()
                .put("cluster_id", await(cluster.clusterId(), timeoutMs))
                .put("controller", controller == null || controller.isEmpty() ? null : controller.id())
                .put("nodes", nodes);
    }

    private static Json.Obj topicObject(TopicDescription description) {
        List<Object> partitions = new ArrayList<>();
        for (TopicPartitionInfo partition : description.partitions()) {
            partitions.add(Json.obj()
                    .put("partition", partition.partition())
                    .put("leader", partition.leader() == null ? null : partition.leader().id())
                    .put("replicas", nodeIds(partition.replicas()))
                    .put("isr", nodeIds(partition.isr())));
        }
        return Json.obj()
                .put("name", description.name())
                .put("topic_id", description.topicId().toString())
                .put("internal", description.isInternal())
                .put("partitions", partitions);
    }

    private static Map<String, Object> configObject(Config config) {
        Map<String, Object> entries = new TreeMap<>();
        for (ConfigEntry entry : config.entries()) {
            entries.put(entry.name(), Json.obj()
                    .put("value", entry.value())
                    .put("source", entry.source().name())
                    .put("default", entry.isDefault())
                    .put("read_only", entry.isReadOnly())
                    .put("sensitive", entry.isSensitive()));
        }
        return entries;
    }

    private static Json.Obj nodeObject(Node node) {
        return Json.obj().put("id", node.id()).put("host", node.host()).put("port", node.port())
                .put("rack", node.rack());
    }

    private static List<Object> nodeIds(List<Node> nodes) {
        List<Object> ids = new ArrayList<>();
        for (Node node : nodes) ids.add(node.id());
        return ids;
    }

    /**
     * Waits for an admin result a little longer than the client's own deadline, so the client's
     * TimeoutException, which says what it waited for, is the one reported.
     */
    private static <T> T await(KafkaFuture<T> future, int timeoutMs) throws Exception {
        return future.get(timeoutMs + AWAIT_GRACE_MS, TimeUnit.MILLISECONDS);
    }

    static int timeoutMs(Options options) {
        return options.intValue("--timeout-ms", Client.DEFAULT_TIMEOUT_MS);
    }

    interface AdminAction {
        int run(Admin admin, int timeoutMs) throws Exception;
    }

    /**
     * Runs one action on an Admin whose every call ends within --timeout-ms, then closes it with a
     * bounded wait (Admin.close() without an argument may wait forever).
     */
    private static int withAdmin(Options options, AdminAction action) throws Exception {
        int timeoutMs = timeoutMs(options);
        Properties properties = options.clientProperties(Map.of(
                AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, options.required("--bootstrap"),
                AdminClientConfig.CLIENT_ID_CONFIG, "kraft-interop-admin",
                AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, Math.min(timeoutMs, 30_000),
                AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, timeoutMs));
        Admin admin = Admin.create(properties);
        try {
            return action.run(admin, timeoutMs);
        } finally {
            admin.close(CLOSE_TIMEOUT);
        }
    }
}
