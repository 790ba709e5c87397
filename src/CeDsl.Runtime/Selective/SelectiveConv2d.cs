using CeDsl.Layers;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace CeDsl.Selective;

/// <summary>
/// Selective convolution (Jeong &amp; Shin, ICML 2019): the pre-activation unit
/// <c>shift (re-allocated channels only) -&gt; BN -&gt; ReLU -&gt; (dropout) -&gt; x * gate -&gt; conv (no bias)</c>,
/// whose input channels can be released (<see cref="Dealloc"/>) and re-used as spatially shifted
/// copies of important channels (<see cref="Realloc"/>). Behaves like the authors' released
/// <c>SelectiveConv2d</c> and has its state-dict layout: <c>norm.*</c>, <c>conv.weight</c>, <c>is_open</c>
/// and, when K &gt; 0, <c>_ind_ptr</c>, <c>_bias</c> and the constant <c>_eye</c> (the identity affine map).
/// </summary>
public sealed class SelectiveConv2d : nn.Module<Tensor, Tensor>
{
    /// <summary>The name of the spatial shifts' parameter (the released code's), the last part of its state-dict key.</summary>
    public const string ShiftParameterName = nameof(_bias);

    /// <summary>Weight decay the reference training applies to the shift parameters <c>_bias</c>.</summary>
    public const double ShiftWeightDecay = 1e-5;

    /// <summary>A new copy's shift is drawn uniformly in [-ShiftRange, ShiftRange] for each axis.</summary>
    public const double ShiftRange = 1.5;

    private readonly BatchNorm2d norm;
    private readonly Dropout? drop;
    private readonly Conv2d conv;
    private readonly Tensor is_open;
    private readonly Tensor? _ind_ptr;
    private readonly Parameter? _bias;
    private readonly Tensor? _eye;

    /// <param name="inChannels">I, the channels read (and gated).</param>
    /// <param name="outChannels">O, the convolution's outputs.</param>
    /// <param name="kernelSize">Square kernel size.</param>
    /// <param name="stride">Convolution stride.</param>
    /// <param name="padding">Zero padding; defaults to kernelSize / 2.</param>
    /// <param name="dropout">Dropout rate after the ReLU (0 = none).</param>
    /// <param name="gamma">dealloc threshold: the joint normalised damage a released set may do to any output.</param>
    /// <param name="k">Number of top-scoring channels realloc copies from; 0 = pruning only (no shifts, no copies).</param>
    /// <param name="nMax">Optional cap: a source with more than this many copies is no longer copied.</param>
    /// <param name="device">Device of the state.</param>
    /// <param name="dtype">Floating-point type of the state (the index buffers stay 64-bit integers).</param>
    /// <param name="alignCorners">
    /// <c>align_corners</c> of the shift's affine grid and bilinear sampling. The released code passes none and
    /// was written for PyTorch &lt; 1.3, whose only behaviour was <c>true</c> (a shift of t pixels moves by
    /// t (W - 1) / W on a square W x W map); <c>false</c> is what the same code does on PyTorch &gt;= 1.3
    /// (exactly t pixels on a square map).
    /// </param>
    public SelectiveConv2d(long inChannels, long outChannels, long kernelSize, long stride = 1, long? padding = null,
        double dropout = 0, double gamma = LayerDefaults.Gamma, int k = LayerDefaults.K, int? nMax = null,
        Device? device = null, ScalarType? dtype = null, bool alignCorners = LayerDefaults.AlignCorners)
        : base(nameof(SelectiveConv2d))
    {
        Require(inChannels >= 1, $"inChannels must be >= 1, got {inChannels}.");
        Require(outChannels >= 1, $"outChannels must be >= 1, got {outChannels}.");
        Require(kernelSize >= 1, $"kernelSize must be >= 1, got {kernelSize}.");
        Require(stride >= 1, $"stride must be >= 1, got {stride}.");
        Require(padding is null or >= 0, $"padding must be >= 0, got {padding}.");
        Require(dropout is >= 0 and < 1, $"dropout must be in [0, 1), got {dropout}.");
        Require(gamma is >= 0 and < 1, $"gamma must be in [0, 1), got {gamma}.");
        Require(k >= 0 && k <= inChannels, $"K must be in [0, inChannels = {inChannels}], got {k}.");
        Require(nMax is null or >= 0, $"N_max must be >= 0, got {nMax}.");

        InChannels = inChannels;
        OutChannels = outChannels;
        KernelSize = kernelSize;
        Stride = stride;
        Padding = padding ?? kernelSize / 2;
        DropoutRate = dropout;
        Gamma = gamma;
        K = k;
        NMax = nMax;
        AlignCorners = alignCorners;

        norm = nn.BatchNorm2d(inChannels);
        if (dropout > 0)
            drop = nn.Dropout(dropout);
        conv = nn.Conv2d(inChannels, outChannels, kernelSize, stride, Padding, bias: false);
        is_open = ones(inChannels);
        if (k > 0)
        {
            _ind_ptr = full(inChannels, -1L, ScalarType.Int64);
            _bias = nn.Parameter(zeros(inChannels, 2));
            _eye = eye(2, 3);
        }
        RegisterComponents();

        MoveAfterBuilding(this, device, dtype);
    }

    /// <summary>
    /// Moves a selective layer built with the default type and device: built that way first, BatchNorm's
    /// num_batches_tracked stays an integer, as in PyTorch, whatever floating-point dtype the caller asks for.
    /// </summary>
    internal static void MoveAfterBuilding(nn.Module module, Device? device, ScalarType? dtype)
    {
        if (device is not null && dtype is not null) module.to(device, dtype.Value);
        else if (device is not null) module.to(device);
        else if (dtype is not null) module.to(dtype.Value);
    }

    /// <summary>I, the input channels.</summary>
    public long InChannels { get; }
    /// <summary>O, the output channels.</summary>
    public long OutChannels { get; }
    /// <summary>Square kernel size.</summary>
    public long KernelSize { get; }
    /// <summary>Convolution stride.</summary>
    public long Stride { get; }
    /// <summary>Zero padding of the convolution.</summary>
    public long Padding { get; }
    /// <summary>Dropout rate after the ReLU.</summary>
    public double DropoutRate { get; }
    /// <summary>dealloc threshold, in [0, 1); changing it affects the next <see cref="Dealloc"/>.</summary>
    public double Gamma
    {
        get;
        set
        {
            if (value is not (>= 0 and < 1))
                throw new ArgumentOutOfRangeException(nameof(value), value, $"{nameof(SelectiveConv2d)}: gamma must be in [0, 1), got {value}.");
            field = value;
        }
    }
    /// <summary>Number of re-allocation candidates; 0 = pruning only.</summary>
    public int K { get; }
    /// <summary>Optional cap on the copies of one source.</summary>
    public int? NMax { get; }
    /// <summary><c>align_corners</c> of the shift's grid sampling.</summary>
    public bool AlignCorners { get; }

    internal BatchNorm2d Norm => norm;
    internal Conv2d Conv => conv;

    /// <summary>Number of open (gate = 1) input channels.</summary>
    public long OpenChannelCount => OpenMask().LongCount(open => open);

    /// <summary>Gate of each input channel (true = open).</summary>
    public bool[] OpenMask() => ChannelImportance.ToDoubles(is_open).Select(v => v != 0).ToArray();

    /// <summary>Source channel each input channel copies (-1 = not a copy; always -1 when K = 0).</summary>
    public long[] CopySources()
    {
        if (_ind_ptr is null)
            return Enumerable.Repeat(-1L, (int)InChannels).ToArray();
        using var scope = NewDisposeScope();
        return _ind_ptr.cpu().data<long>().ToArray();
    }

    /// <inheritdoc />
    public override Tensor forward(Tensor input)
    {
        if (input.dim() != 4 || input.shape[1] != InChannels)
            throw new ArgumentException(
                $"{LayerPaths.Describe(this, Describe())}: expected an N x {InChannels} x H x W input, got [{string.Join(", ", input.shape)}].");
        using var scope = NewDisposeScope();
        var x = ShiftReallocatedChannels(input);
        x = F.relu(norm.call(x));
        if (drop is not null)
            x = drop.call(x);
        var gated = x * is_open.view(-1, 1, 1);
        return conv.call(gated).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Replaces every re-allocated channel by its source channel translated by its <c>_bias</c> (x, y),
    /// divided by (H + W) / 4, through an affine grid with bilinear sampling and border padding.
    /// </summary>
    private Tensor ShiftReallocatedChannels(Tensor input)
    {
        if (_ind_ptr is null || _bias is null || _eye is null)
            return input;
        var copies = _ind_ptr.ge(0).nonzero().view(-1);
        long count = copies.shape[0];
        if (count == 0)
            return input;

        long batch = input.shape[0], height = input.shape[2], width = input.shape[3];
        var translation = _bias.index_select(0, copies) / ((height + width) / 4.0);
        var theta = cat(new[] { _eye.narrow(1, 0, 2).expand(count, 2, 2), translation.unsqueeze(2) }, 2);
        var grid = F.affine_grid(theta, new[] { count, batch, height, width }, AlignCorners);
        var sources = input.index_select(1, _ind_ptr.index_select(0, copies)).transpose(0, 1);
        var shifted = F.grid_sample(sources, grid, GridSampleMode.Bilinear, GridSamplePaddingMode.Border, AlignCorners);
        return input.index_copy(1, copies, shifted.transpose(0, 1));
    }

    /// <summary>The O x I expected channel damage matrix of this layer (gated; no gradient).</summary>
    public Tensor Ecdm()
    {
        using var noGrad = no_grad();
        return ChannelImportance.Ecdm(norm.weight, norm.bias!, conv.weight!, 1, is_open);
    }

    /// <summary>The ECDM with absolute values and rows normalised to sum to 1 (no gradient).</summary>
    public Tensor NormalizedEcdm()
    {
        using var noGrad = no_grad();
        using var ecdm = Ecdm();
        return ChannelImportance.Normalize(ecdm);
    }

    /// <summary>
    /// Releases unimportant input channels: sorts the channels ascending by their largest normalised damage,
    /// finds the first position i where the first i + 1 of them together damage some output by more than
    /// gamma, and closes the first i (gate 0, <c>_ind_ptr</c> -1). Ties keep channel order.
    /// </summary>
    /// <returns>The channels the rule released (including ones already closed) and the newly closed ones.</returns>
    public DeallocResult Dealloc()
    {
        using var noGrad = no_grad();
        double[,] damage = NormalizedEcdmValues();
        int outputs = damage.GetLength(0), inputs = damage.GetLength(1);

        var maxDamage = new double[inputs];
        for (int i = 0; i < inputs; i++)
            for (int o = 0; o < outputs; o++)
                maxDamage[i] = Math.Max(maxDamage[i], damage[o, i]);
        int[] order = Enumerable.Range(0, inputs).OrderBy(i => maxDamage[i]).ToArray();

        var partial = new double[outputs];
        int releaseCount = 0;
        for (int position = 0; position < inputs; position++)
        {
            double worst = 0;
            for (int o = 0; o < outputs; o++)
            {
                partial[o] += damage[o, order[position]];
                worst = Math.Max(worst, partial[o]);
            }
            if (worst > Gamma)
            {
                releaseCount = position;
                break;
            }
        }

        long[] released = order.Take(releaseCount).Select(i => (long)i).ToArray();
        bool[] wasOpen = OpenMask();
        long[] newlyClosed = released.Where(i => wasOpen[i]).Order().ToArray();
        if (released.Length > 0)
        {
            using var index = tensor(released, device: is_open.device);
            is_open.index_fill_(0, index, 0);
            _ind_ptr?.index_fill_(0, index, -1);
        }
        return new DeallocResult(released, newlyClosed, OpenChannelCount);
    }

    /// <summary>
    /// Re-uses the closed slots (nothing when K = 0): scores each open channel by the L2 norm of its
    /// normalised-ECDM column (0 for a source, and its copies, with more than N_max copies), takes the top K,
    /// and fills every closed slot with a uniformly chosen one of them: gate opened, conv weights reading
    /// the slot zeroed (the output is unchanged), BN weight, bias, running mean and variance copied, a new
    /// shift drawn uniformly in [-1.5, 1.5] for x and y, and <c>_ind_ptr</c> set to the source's own source
    /// if the source is a copy, else to the source.
    /// </summary>
    public ReallocResult Realloc(Random rng)
    {
        ArgumentNullException.ThrowIfNull(rng);
        if (_ind_ptr is null || _bias is null)
            return ReallocResult.Empty;
        using var noGrad = no_grad();

        bool[] open = OpenMask();
        long[] slots = Enumerable.Range(0, open.Length).Where(i => !open[i]).Select(i => (long)i).ToArray();
        if (slots.Length == 0)
            return ReallocResult.Empty;

        double[] score;
        using (var normalized = NormalizedEcdm())
        using (var importance = ChannelImportance.ColumnImportance(normalized))
            score = ChannelImportance.ToDoubles(importance);
        long[] pointers = CopySources();
        if (NMax is int cap)
        {
            foreach (var group in pointers.Where(p => p >= 0).GroupBy(p => p).Where(g => g.Count() > cap))
            {
                score[group.Key] = 0;
                for (int i = 0; i < pointers.Length; i++)
                    if (pointers[i] == group.Key) score[i] = 0;
            }
        }
        // Only open channels are candidates: the reference takes the top K over all channels, which can
        // only differ when fewer than K open channels score above 0 (it could then copy a released slot).
        long[] candidates = Enumerable.Range(0, open.Length).Where(i => open[i])
            .OrderByDescending(i => score[i]).ThenBy(i => i).Take(K).Select(i => (long)i).ToArray();
        if (candidates.Length == 0)
            return ReallocResult.Empty;

        var copies = new ChannelCopy[slots.Length];
        var shifts = new double[slots.Length * 2];
        for (int j = 0; j < slots.Length; j++)
        {
            long source = candidates[rng.Next(candidates.Length)];
            double shiftX = (2 * rng.NextDouble() - 1) * ShiftRange;
            double shiftY = (2 * rng.NextDouble() - 1) * ShiftRange;
            long root = pointers[source] >= 0 ? pointers[source] : source;
            copies[j] = new ChannelCopy(slots[j], source, root, shiftX, shiftY);
            shifts[2 * j] = shiftX;
            shifts[2 * j + 1] = shiftY;
        }

        using var scope = NewDisposeScope();
        var device = is_open.device;
        var slotIndex = tensor(slots, device: device);
        var sourceIndex = tensor(copies.Select(c => c.Source).ToArray(), device: device);
        is_open.index_fill_(0, slotIndex, 1);
        conv.weight!.index_fill_(1, slotIndex, 0);
        foreach (var state in new[] { norm.weight, norm.bias!, norm.running_mean!, norm.running_var! })
            state.index_copy_(0, slotIndex, state.index_select(0, sourceIndex));
        _bias.index_copy_(0, slotIndex, tensor(shifts, device: device).view(-1, 2).to(_bias.dtype));
        _ind_ptr.index_copy_(0, slotIndex, tensor(copies.Select(c => c.Root).ToArray(), device: device));
        return new ReallocResult(candidates, copies);
    }

    /// <summary>
    /// Splits the trainable parameters of <paramref name="model"/> into optimizer groups: every selective
    /// layer's shift <c>_bias</c> with <see cref="ShiftWeightDecay"/> (1e-5, as the reference training), all
    /// other parameters with <paramref name="baseWeightDecay"/> (1e-4 there). Empty groups are left out. Use as
    /// <c>groups.Select(g =&gt; new TorchSharp.Modules.SGD.ParamGroup(g.Parameters, lr, momentum, weight_decay: g.WeightDecay, nesterov: true))</c>.
    /// </summary>
    public static IReadOnlyList<WeightDecayGroup> WeightDecayGroups(nn.Module model, double baseWeightDecay)
    {
        ArgumentNullException.ThrowIfNull(model);
        var shifts = new HashSet<IntPtr>(
            model.modules().Prepend(model).OfType<SelectiveConv2d>()
                .Where(layer => layer._bias is not null)
                .Select(layer => layer._bias!.Handle));
        var trainable = model.parameters().Where(p => p.requires_grad).ToList();
        var groups = new List<WeightDecayGroup>
        {
            new(trainable.Where(p => !shifts.Contains(p.Handle)).ToList(), baseWeightDecay),
            new(trainable.Where(p => shifts.Contains(p.Handle)).ToList(), ShiftWeightDecay),
        };
        return groups.Where(g => g.Parameters.Count > 0).ToList();
    }

    private double[,] NormalizedEcdmValues()
    {
        using var normalized = NormalizedEcdm();
        double[] flat = ChannelImportance.ToDoubles(normalized);
        int outputs = (int)normalized.shape[0], inputs = (int)normalized.shape[1];
        var values = new double[outputs, inputs];
        Buffer.BlockCopy(flat, 0, values, 0, flat.Length * sizeof(double));
        return values;
    }

    private string Describe() => $"SelectiveConv2d({InChannels} -> {OutChannels}, k={KernelSize})";

    private static void Require(bool condition, string message)
    {
        if (!condition) throw new ArgumentException($"SelectiveConv2d: {message}");
    }
}

/// <summary>What <see cref="SelectiveConv2d.Dealloc"/> did.</summary>
/// <param name="Released">The channels the rule selected, in ascending order of their largest normalised damage (already-closed ones included, as they score 0).</param>
/// <param name="NewlyClosed">The selected channels that were open before, ascending.</param>
/// <param name="OpenChannels">Open channels afterwards.</param>
public sealed record DeallocResult(IReadOnlyList<long> Released, IReadOnlyList<long> NewlyClosed, long OpenChannels);

/// <summary>One re-allocated slot.</summary>
/// <param name="Slot">The channel that was closed and now holds a copy.</param>
/// <param name="Source">The channel chosen among the top-K candidates (BN state copied from it).</param>
/// <param name="Root">The channel the slot reads (<c>_ind_ptr</c>): the source's own source if the source is a copy.</param>
/// <param name="ShiftX">New horizontal shift (<c>_bias[slot, 0]</c>).</param>
/// <param name="ShiftY">New vertical shift (<c>_bias[slot, 1]</c>).</param>
public readonly record struct ChannelCopy(long Slot, long Source, long Root, double ShiftX, double ShiftY);

/// <summary>What <see cref="SelectiveConv2d.Realloc"/> did.</summary>
/// <param name="Candidates">The top-K channels copies were drawn from, best first.</param>
/// <param name="Copies">One entry per filled slot, ascending by slot.</param>
public sealed record ReallocResult(IReadOnlyList<long> Candidates, IReadOnlyList<ChannelCopy> Copies)
{
    /// <summary>Nothing re-allocated.</summary>
    public static ReallocResult Empty { get; } = new([], []);
}

/// <summary>Parameters sharing one weight decay in an optimizer.</summary>
public sealed record WeightDecayGroup(IReadOnlyList<Parameter> Parameters, double WeightDecay);
