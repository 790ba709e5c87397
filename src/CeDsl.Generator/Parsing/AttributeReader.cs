using System;
using System.Collections.Concurrent;
using System.Collections.Immutable;
using System.Linq;
using System.Reflection;
using Microsoft.CodeAnalysis;

namespace CeDsl.Generator.Parsing;

/// <summary>
/// Turns an attribute application into an instance of the DSL's attribute class (compiled into the
/// generator): its constructor runs with the written arguments and its properties are set from the named
/// ones, so every value not written keeps the default the attribute class declares. Arguments the compiler
/// already rejects, and values of type <see cref="Type"/> (a stage's block types, read as symbols), are left
/// at their defaults.
/// </summary>
internal static class AttributeReader
{
    private static readonly ConcurrentDictionary<(Type, string), PropertyInfo?> Properties = new();
    private static readonly ConcurrentDictionary<(Type, int), ConstructorInfo?> Constructors = new();

    public static T Read<T>(AttributeData data) where T : Attribute => (T)Read(typeof(T), data);

    public static Attribute Read(Type type, AttributeData data)
    {
        var positional = data.ConstructorArguments;
        var constructor = Constructors.GetOrAdd((type, positional.Length), key => key.Item1.GetConstructors().FirstOrDefault(c => c.GetParameters().Length == key.Item2));
        Attribute attribute;
        if (constructor is null)
        {
            attribute = (Attribute)Activator.CreateInstance(type, nonPublic: false)!;
        }
        else
        {
            var parameters = constructor.GetParameters();
            attribute = (Attribute)constructor.Invoke(parameters.Select((p, i) => Value(positional[i], p.ParameterType) ?? Default(p)).ToArray());
        }

        foreach (var argument in data.NamedArguments)
        {
            var property = Properties.GetOrAdd((type, argument.Key), key => key.Item1.GetProperty(key.Item2, BindingFlags.Public | BindingFlags.Instance));
            if (property is null || !property.CanWrite) continue;
            if (Value(argument.Value, property.PropertyType) is { } value) property.SetValue(attribute, value);
        }
        return attribute;
    }

    private static object? Default(ParameterInfo parameter) =>
        parameter.HasDefaultValue ? parameter.DefaultValue
        : parameter.ParameterType.IsValueType ? Activator.CreateInstance(parameter.ParameterType) : null;

    /// <summary>The constant as a value of <paramref name="type"/>, or null when it has none (an error, a type, null).</summary>
    private static object? Value(TypedConstant constant, Type type)
    {
        if (constant.Kind is TypedConstantKind.Error or TypedConstantKind.Type or TypedConstantKind.Array || constant.Value is not { } value) return null;
        var target = Nullable.GetUnderlyingType(type) ?? type;
        if (target.IsEnum) return Enum.ToObject(target, value);
        if (target.IsInstanceOfType(value)) return value;
        return value is IConvertible ? Convert.ChangeType(value, target, System.Globalization.CultureInfo.InvariantCulture) : null;
    }

    /// <summary>The symbol a <see cref="Type"/>-valued argument names: positional <paramref name="index"/>, or the named argument <paramref name="name"/>.</summary>
    public static ITypeSymbol? TypeArgument(AttributeData data, int index) => Symbol(data.ConstructorArguments, index);

    public static ITypeSymbol? TypeArgument(AttributeData data, string name)
    {
        foreach (var argument in data.NamedArguments)
        {
            if (argument.Key == name) return argument.Value.Value as ITypeSymbol;
        }
        return null;
    }

    private static ITypeSymbol? Symbol(ImmutableArray<TypedConstant> arguments, int index) =>
        arguments.Length > index && arguments[index].Kind == TypedConstantKind.Type ? arguments[index].Value as ITypeSymbol : null;
}
