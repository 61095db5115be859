package kraft.interop;

import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.ExecutionException;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import org.apache.kafka.common.errors.RetriableException;

/**
 * A command-line driver of the real Apache Kafka Java clients, for kraft's interop tests.
 *
 * Usage: java -cp 'target/classes:target/lib/*' kraft.interop.Client SUBCOMMAND [--option value]...
 *
 * Every result is one JSON object per line on stdout; logs go to stderr. Exit codes:
 *   0  the operation succeeded
 *   1  the cluster or the client reported an error (the last stdout line says which)
 *   2  bad usage
 *   3  timed out (no answer, or fewer records than --expect before --timeout-ms)
 * An error line is {"error": "<exception class>", "message": ..., "retriable": ...}.
 */
public final class Client {
    static final int EXIT_OK = 0;
    static final int EXIT_FAILED = 1;
    static final int EXIT_USAGE = 2;
    static final int EXIT_TIMEOUT = 3;

    /** Options every subcommand takes. */
    static final Set<String> COMMON = Set.of("--bootstrap", "--timeout-ms", "--property");
    static final int DEFAULT_TIMEOUT_MS = 30_000;

    interface Command {
        int run(String[] args) throws Exception;
    }

    private static final Map<String, Command> COMMANDS = new TreeMap<>(Map.of(
            "create-topic", AdminCommands::createTopic,
            "delete-topic", AdminCommands::deleteTopic,
            "describe", AdminCommands::describe,
            "list-topics", AdminCommands::listTopics,
            "produce", ProduceCommand::run,
            "consume", ConsumeCommand::run));

    private Client() {}

    public static void main(String[] args) {
        System.exit(execute(args));
    }

    /** The one place where exceptions become JSON lines and exit codes. */
    static int execute(String[] args) {
        Command command = args.length == 0 ? null : COMMANDS.get(args[0]);
        if (command == null) {
            System.err.println("usage: Client {" + String.join("|", COMMANDS.keySet())
                    + "} [--option value]...");
            return EXIT_USAGE;
        }
        try {
            return command.run(args);
        } catch (Options.UsageError e) {
            System.err.println(args[0] + ": " + e.getMessage());
            return EXIT_USAGE;
        } catch (Exception e) {
            Throwable cause = unwrap(e);
            printError(cause);
            return isTimeout(cause) ? EXIT_TIMEOUT : EXIT_FAILED;
        }
    }

    static Options parse(String[] args, Set<String> valueNames, Set<String> flagNames) {
        Set<String> names = Stream.concat(COMMON.stream(), valueNames.stream())
                .collect(Collectors.toSet());
        return Options.parse(args, 1, names, flagNames);
    }

    static Throwable unwrap(Throwable error) {
        Throwable current = error;
        while (current instanceof ExecutionException && current.getCause() != null) {
            current = current.getCause();
        }
        return current;
    }

    static boolean isTimeout(Throwable error) {
        return error instanceof java.util.concurrent.TimeoutException
                || error instanceof org.apache.kafka.common.errors.TimeoutException;
    }

    static Json.Obj errorObject(Throwable error) {
        return Json.obj()
                .put("error", error.getClass().getSimpleName())
                .put("message", error.getMessage())
                .put("retriable", error instanceof RetriableException);
    }

    static void printError(Throwable error) {
        Json.print(errorObject(error));
    }
}
