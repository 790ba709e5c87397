using CeDsl.IO;
using TorchSharp;
using static TorchSharp.torch;

namespace CeDsl.Runtime.Tests.IO;

public sealed class AtomicSaveTests : IDisposable
{
    private readonly TempDirectory _directory = new();

    public void Dispose() => _directory.Dispose();

    /// <summary>Passes writes through until a byte budget is spent, then fails like a full disk.</summary>
    private sealed class FailingStream(Stream inner, long budget) : Stream
    {
        private long _written;

        public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

        public override void Write(ReadOnlySpan<byte> buffer)
        {
            long allowed = Math.Min(buffer.Length, budget - _written);
            inner.Write(buffer[..(int)allowed]);
            _written += allowed;
            if (allowed < buffer.Length)
                throw new IOException("injected failure: no space left on device");
        }

        public override void WriteByte(byte value) => Write([value]);
        public override void Flush() => inner.Flush();
        public override bool CanRead => false;
        public override bool CanSeek => false;
        public override bool CanWrite => true;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => _written; set => throw new NotSupportedException(); }
        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
    }

    private static nn.Module<Tensor, Tensor> Model(int seed)
    {
        manual_seed(seed);
        return nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.Flatten(), nn.Linear(8 * 4 * 4, 10));
    }

    private void AssertOnlyDestinationRemains(string destination, byte[] expectedContent)
    {
        Assert.Equal(new[] { Path.GetFileName(destination) }, _directory.Entries()); // no temporary file left behind
        Assert.Equal(expectedContent, File.ReadAllBytes(destination));
    }

    public static TheoryData<string, long> FailurePoints() => new()
    {
        { ".safetensors", 0 },     // nothing written
        { ".safetensors", 100 },   // inside the header
        { ".safetensors", 2000 },  // inside the tensor data
        { ".dat", 0 },
        { ".dat", 1000 },
    };

    [Theory]
    [MemberData(nameof(FailurePoints))]
    public void A_save_failing_mid_write_leaves_the_existing_file_byte_identical_and_no_temporary_file(string extension, long failAfterBytes)
    {
        string path = _directory.File("model" + extension);
        using var scope = NewDisposeScope();
        StateDict.Save(Model(seed: 1), path);
        byte[] original = File.ReadAllBytes(path);
        var different = Model(seed: 2);

        var error = Assert.Throws<IOException>(() =>
            StateDict.Save(different, path, decorateOutput: file => new FailingStream(file, failAfterBytes)));

        Assert.Contains(path, error.Message);
        Assert.Contains("left unchanged", error.Message);
        Assert.Contains("injected failure", error.InnerException!.Message);
        AssertOnlyDestinationRemains(path, original);

        StateDict.Save(different, path); // and the same save without the failure replaces it
        Assert.NotEqual(original, File.ReadAllBytes(path));
        Assert.Single(_directory.Entries());
    }

    [Fact]
    public void A_safetensors_save_failing_mid_write_leaves_the_existing_file_byte_identical()
    {
        string path = _directory.File("tensors.safetensors");
        using var scope = NewDisposeScope();
        SafeTensors.Save(new Dictionary<string, Tensor> { ["x"] = ones(4) }, path);
        byte[] original = File.ReadAllBytes(path);

        Assert.Throws<IOException>(() => SafeTensors.Save(new Dictionary<string, Tensor> { ["x"] = zeros(1000) }, path,
            metadata: null, decorateOutput: file => new FailingStream(file, 500)));

        AssertOnlyDestinationRemains(path, original);
    }

    [Fact]
    public void A_failure_that_is_not_an_IO_error_propagates_unchanged_and_cleans_up()
    {
        string path = _directory.File("data.bin");
        File.WriteAllBytes(path, [1, 2, 3]);

        var error = Assert.Throws<InvalidOperationException>(() => AtomicFile.Write(path, stream =>
        {
            stream.Write(new byte[4096]);
            throw new InvalidOperationException("serializer failed");
        }));

        Assert.Equal("serializer failed", error.Message);
        AssertOnlyDestinationRemains(path, [1, 2, 3]);
    }

    [Theory]
    [InlineData(".safetensors")]
    [InlineData(".dat")]
    public void A_failing_final_rename_leaves_the_destination_and_removes_the_temporary_file(string extension)
    {
        // The destination is a non-empty directory: everything succeeds except replacing it.
        string path = _directory.File("occupied" + extension);
        Directory.CreateDirectory(path);
        File.WriteAllText(Path.Combine(path, "keep.txt"), "keep");
        using var scope = NewDisposeScope();

        var error = Assert.Throws<IOException>(() => StateDict.Save(Model(seed: 3), path));

        Assert.Contains(path, error.Message);
        Assert.Equal(new[] { Path.GetFileName(path) }, _directory.Entries());
        Assert.Equal("keep", File.ReadAllText(Path.Combine(path, "keep.txt")));
    }

    [Fact]
    public void Saving_into_a_missing_directory_creates_it()
    {
        string path = Path.Combine(_directory.Path, "runs", "guide", "model.safetensors");
        using var scope = NewDisposeScope();
        using var model = Model(seed: 4);

        StateDict.Save(model, path);

        Assert.Equal(["model.safetensors"], Directory.GetFileSystemEntries(Path.GetDirectoryName(path)!).Select(Path.GetFileName));
        using var reloaded = Model(seed: 5);
        StateDict.Load(reloaded, path);
        Assert.Equal(model.state_dict().Values.Select(t => t.bytes.ToArray()), reloaded.state_dict().Values.Select(t => t.bytes.ToArray()));
    }

    [Fact]
    public void Saving_under_a_file_fails_naming_the_destination_and_creates_nothing()
    {
        File.WriteAllText(_directory.File("runs"), "a file, not a folder");
        string path = Path.Combine(_directory.Path, "runs", "model.safetensors");
        using var scope = NewDisposeScope();

        var error = Assert.Throws<IOException>(() => StateDict.Save(Model(seed: 4), path));

        Assert.Contains(path, error.Message);
        Assert.Equal(["runs"], _directory.Entries());
    }

    [Fact]
    public void Saving_replaces_an_existing_file_and_leaves_nothing_else()
    {
        string path = _directory.File("replaced.safetensors");
        File.WriteAllText(path, "old content");
        using var scope = NewDisposeScope();

        SafeTensors.Save(new Dictionary<string, Tensor> { ["x"] = ones(2) }, path);

        Assert.Equal(new[] { "replaced.safetensors" }, _directory.Entries());
        Assert.Equal(new float[] { 1, 1 }, SafeTensors.Load(path)["x"].data<float>().ToArray());
    }
}
