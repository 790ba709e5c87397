namespace CeDsl.Cli.Tests;

/// <summary>Whatever fails, cedsl prints one line: a user's error as "error: ...", a bug as "internal error" with its details in a file.</summary>
public sealed class FailureReportTests
{
    [Fact]
    public void A_bug_is_one_line_that_names_a_file_with_the_stack_trace()
    {
        Exception bug;
        try
        {
            throw new InvalidOperationException("an unforeseen state\nsecond line of the message");
        }
        catch (InvalidOperationException e)
        {
            bug = e;
        }

        string line = CommandAction.Describe("cedsl eval", bug);

        var match = System.Text.RegularExpressions.Regex.Match(line,
            @"^cedsl eval: internal error: InvalidOperationException: an unforeseen state \(a bug in cedsl; please report it with (?<file>\S+\.txt)\)$");
        Assert.True(match.Success, line);
        string details = File.ReadAllText(match.Groups["file"].Value);
        File.Delete(match.Groups["file"].Value);
        Assert.Contains("second line of the message", details);
        Assert.Contains(nameof(A_bug_is_one_line_that_names_a_file_with_the_stack_trace), details);
    }

    [Fact]
    public void A_user_error_of_several_lines_is_one_line_that_keeps_every_item()
    {
        var mismatch = new CeDsl.IO.StateDictMismatchException("model.pt", "resnet20", ["fc.weight", "fc.bias"], ["layer1.0.ce.x_weight"], []);

        Assert.Equal("cedsl eval: error: State dict 'model.pt' does not match module 'resnet20'; nothing was loaded. "
            + "missing from the file (2): fc.weight, fc.bias; unexpected in the file (1): layer1.0.ce.x_weight",
            CommandAction.Describe("cedsl eval", mismatch));
    }

    [Fact]
    public void Running_out_of_memory_is_an_error_with_a_hint_not_a_bug()
    {
        var failure = new System.Runtime.InteropServices.ExternalException(
            "DefaultCPUAllocator: not enough memory: you tried to allocate 80000000000 bytes.\nException raised from alloc_cpu at ...");

        Assert.Equal("cedsl summary: error: not enough memory (DefaultCPUAllocator: not enough memory: you tried to allocate 80000000000 bytes.); try a smaller --batch or --input",
            CommandAction.Describe("cedsl summary", failure));
    }
}
